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
#include "rpc/rpc.h"
#include "store/pg_pool.h"

/* How one procedure turns a payload into a statement and rows into an answer (opaque). The
 * service table (service.c) points its unary rows at these. */
typedef struct Procedure Procedure;

extern const Procedure procedures_get_friends;
extern const Procedure procedures_get_mutual_friends;
extern const Procedure procedures_get_pending_requests;
extern const Procedure procedures_get_sent_requests;
extern const Procedure procedures_upsert_friendship;
extern const Procedure procedures_get_friendship_status;
extern const Procedure procedures_block_user;
extern const Procedure procedures_unblock_user;
extern const Procedure procedures_get_blocked_users;
extern const Procedure procedures_get_blocking_status;
extern const Procedure procedures_get_social_settings;
extern const Procedure procedures_upsert_social_settings;
extern const Procedure procedures_get_private_messages_settings;

/* pg is borrowed; it must outlive every call. -1 (logged) without a pool. */
int procedures_init(PgPool *pg) __attribute__((warn_unused_result));
/* Forgets the pool; idempotent. */
void procedures_shutdown(void);

/* A unary request on an authenticated connection, for the row proc (its handler a Procedure,
 * or NULL: not supported): decodes the payload, runs the SQL, answers with rpc_respond (typed
 * errors inside the response) or rpc_respond_error (malformed payload, unsupported procedure).
 * Always answers exactly once, unless the connection closed meanwhile. */
void procedures_call(Conn *c, uint32_t msg_no, const RpcProcedure *proc, const uint8_t *payload,
					 size_t len);

#endif /* SOCIALD_PROCEDURES_H */
