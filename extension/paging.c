/*-------------------------------------------------------------------------
 *
 * paging.c
 *	  The one table of page sizes, and the SQL functions that read it.
 *
 * The reference service clamps paging silently: a NULL, zero or negative
 * limit is the list's default, a larger one its maximum; a NULL or negative
 * offset is 0, a larger one the cap.  A response carries the page number
 * ceil(offset / limit) + 1 of the limit and offset actually used.  Every
 * paged read clamps here (friendset.c in C, the SQL reads through
 * social.page_limit and social.clamp_offset), and sociald asks
 * social.page_number for the page, so nothing outside this file knows a
 * number.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "paging.h"

#include "errors.h"
#include "fmgr.h"
#include "utils/builtins.h"

/* The offset cap, the same for every list. */
#define PAGE_MAX_OFFSET 100000

typedef struct PageListLimits
{
	const char *name; /* as social.page_limit and page_number take it */
	int32		default_limit;
	int32		max_limit;
} PageListLimits;

static const PageListLimits page_lists[PAGE_LIST_COUNT] = {
	[PAGE_FRIENDS] = {"friends", 1000, 1000},
	[PAGE_MUTUAL_FRIENDS] = {"mutual_friends", 1000, 1000},
	[PAGE_PENDING_REQUESTS] = {"pending_requests", 100, 200},
	[PAGE_SENT_REQUESTS] = {"sent_requests", 100, 200},
	[PAGE_BLOCKED_USERS] = {"blocked_users", 200, 200},
};

int32
PageLimit(PageList list, bool isnull, int32 requested)
{
	const PageListLimits *l = &page_lists[list];

	if (isnull || requested <= 0)
		return l->default_limit;
	return Min(requested, l->max_limit);
}

int32
PageOffset(bool isnull, int32 requested)
{
	if (isnull || requested < 0)
		return 0;
	return Min(requested, PAGE_MAX_OFFSET);
}

int32
PageNumber(int32 limit, int32 offset)
{
	Assert(limit > 0 && offset >= 0);
	return (int32) (((int64) offset + limit - 1) / limit + 1);
}

/* The list argument argno of a SQL function; SC014 when it names no paged list. */
static PageList
PageListFromArg(FunctionCallInfo fcinfo, int argno)
{
	char *name;

	if (PG_ARGISNULL(argno))
		ereport(ERROR, (errcode(ERRCODE_SOCIAL_INVALID_LIST), errmsg("list must not be null"),
						errhint("The paged lists are friends, mutual_friends, pending_requests, "
								"sent_requests and blocked_users.")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	for (int i = 0; i < PAGE_LIST_COUNT; i++)
		if (strcmp(name, page_lists[i].name) == 0)
			return (PageList) i;
	ereport(ERROR, (errcode(ERRCODE_SOCIAL_INVALID_LIST), errmsg("unknown list: \"%s\"", name),
					errhint("The paged lists are friends, mutual_friends, pending_requests, "
							"sent_requests and blocked_users.")));
	pg_unreachable();
}

/* social.page_limit(list text, requested integer) */
PG_FUNCTION_INFO_V1(social_page_limit);
Datum
social_page_limit(PG_FUNCTION_ARGS)
{
	PageList list = PageListFromArg(fcinfo, 0);

	PG_RETURN_INT32(PageLimit(list, PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1)));
}

/* social.clamp_offset(requested integer) */
PG_FUNCTION_INFO_V1(social_clamp_offset);
Datum
social_clamp_offset(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(PageOffset(PG_ARGISNULL(0), PG_ARGISNULL(0) ? 0 : PG_GETARG_INT32(0)));
}

/* social.page_number(list text, "limit" integer, "offset" integer) */
PG_FUNCTION_INFO_V1(social_page_number);
Datum
social_page_number(PG_FUNCTION_ARGS)
{
	PageList list = PageListFromArg(fcinfo, 0);
	int32	 limit = PageLimit(list, PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1));
	int32	 offset = PageOffset(PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2));

	PG_RETURN_INT32(PageNumber(limit, offset));
}
