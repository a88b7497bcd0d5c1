/*-------------------------------------------------------------------------
 *
 * paging.h
 *	  Page sizes and the offset cap of every paged read.
 *
 * The numbers live in one table in paging.c.  friendset.c clamps friends and
 * mutual friends with it; the SQL reads (pending_requests, sent_requests,
 * blocked_users) take their clamps from social.page_limit and
 * social.clamp_offset, and sociald its page numbers from social.page_number,
 * all three implemented in paging.c over the same table.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SOCIAL_PAGING_H
#define SOCIAL_PAGING_H

/* The paged lists; social.page_limit and page_number name them in lower case. */
typedef enum PageList
{
	PAGE_FRIENDS = 0,
	PAGE_MUTUAL_FRIENDS,
	PAGE_PENDING_REQUESTS,
	PAGE_SENT_REQUESTS,
	PAGE_BLOCKED_USERS,
	PAGE_LIST_COUNT
} PageList;

/*
 * The limit a read uses: the list's default when the request is NULL, zero or
 * negative, else the request up to the list's maximum.
 */
extern int32 PageLimit(PageList list, bool isnull, int32 requested);

/* The offset a read uses: 0 when NULL or negative, else at most the cap. */
extern int32 PageOffset(bool isnull, int32 requested);

/* The reference service's page number, ceil(offset / limit) + 1, of a clamped limit and offset. */
extern int32 PageNumber(int32 limit, int32 offset);

#endif /* SOCIAL_PAGING_H */
