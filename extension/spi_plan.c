/*-------------------------------------------------------------------------
 *
 * spi_plan.c
 *	  Prepared-once SPI statements.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "spi_plan.h"

uint64
SpiPlanExec(SpiPlan *p, Datum *values, const char *nulls, bool read_only, long count)
{
	int rc;

	if (p->plan == NULL)
	{
		/*
		 * Always the generic plan: every statement here is a handful of index probes whose
		 * best plan does not depend on the values, and a custom plan would be planned anew on
		 * every call (time-window parameters make custom plans look cheaper than they are).
		 */
		SPIPlanPtr plan =
			SPI_prepare_cursor(p->sql, p->nargs, p->argtypes, CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", p->sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		p->plan = plan;
	}

	rc = SPI_execute_plan(p->plan, values, nulls, read_only, count);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed for \"%s\": %s", p->sql, SPI_result_code_string(rc));
	return SPI_processed;
}

Datum
SpiResultValue(uint64 row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}
