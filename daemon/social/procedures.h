/*
 * procedures.h — the unary SocialService procedures, mapped onto the social extension's SQL
 * functions. The daemon holds no friendship rule: every decision is the extension's, and its
 * SQLSTATE picks the typed error of the response (README: Errors).
 */
#ifndef SOCIALD_PROCEDURES_H
#define SOCIALD_PROCEDURES_H

#include <stddef.h>
#include <stdint.h>

#include "door/conn.h"
#include "store/pg_pool.h"
#include "social/service.h"

/* pg is borrowed; it must outlive every call. */
void procedures_init(PgPool *pg);

/* A unary request on an authenticated connection: decodes the payload, runs the SQL, answers
 * with rpc_respond (typed errors inside the response) or rpc_respond_error (malformed payload,
 * unsupported procedure). Always answers exactly once, unless the connection closed meanwhile. */
void procedures_call(Conn *c, uint32_t msg_no, const ServiceProcedure *proc, const uint8_t *payload,
					 size_t len);

#endif /* SOCIALD_PROCEDURES_H */
