/*-------------------------------------------------------------------------
 *
 * spi_plan.h
 *	  Statements prepared once per backend and kept for its lifetime.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SOCIAL_SPI_PLAN_H
#define SOCIAL_SPI_PLAN_H

#include "executor/spi.h"

#define SPI_PLAN_MAX_ARGS 8

/*
 * One statement: its SQL (with $n parameters only, never formatted values)
 * and argument types.  'plan' starts NULL and is filled on first use, then
 * kept with SPI_keepplan; it always runs the generic plan, which the plan cache replans after
 * DDL.
 */
typedef struct SpiPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[SPI_PLAN_MAX_ARGS];
	SPIPlanPtr	plan;
} SpiPlan;

/*
 * Executes 'p' with 'values' (no NULLs unless 'nulls' is given, in SPI's
 * ' '/'n' convention) inside an SPI connection; returns SPI_processed.
 * Any SPI failure is a bug and raises elog(ERROR).
 */
extern uint64 SpiPlanExec(SpiPlan *p, Datum *values, const char *nulls, bool read_only, long count);

/* Column 'col' (1-based) of row 'row' of the last result; *isnull set. */
extern Datum SpiResultValue(uint64 row, int col, bool *isnull);

#endif /* SOCIAL_SPI_PLAN_H */
