/*
 * service.h — decentraland.social_service.v2.SocialService: the one table that says, for every
 * procedure, its id, its name, its kind and who handles it, and the door callbacks that dispatch
 * through it.
 *
 * Procedure ids are 1..33 in declaration order, as the reference service numbers them. Clients
 * look procedures up by name; ids are opaque to them.
 */
#ifndef SOCIALD_SERVICE_H
#define SOCIALD_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "door/conn.h"
#include "rpc/rpc.h"
#include "social/protocol.h"


/* The module every session serves; its rows are service_procedures. */
extern const RpcModule	  service_module;
extern const RpcProcedure service_procedures[];

/* The door's call, stream open and stream closed callbacks (WsApp), dispatching by the row's
 * kind and handler. Loop thread. */
void service_call(Conn *c, uint32_t msg_no, const RpcProcedure *proc, const uint8_t *payload,
				  size_t len);
void service_stream_open(Conn *c, uint32_t msg_no, const RpcProcedure *proc);
void service_stream_closed(Conn *c, uint32_t msg_no, const RpcProcedure *proc);

#endif /* SOCIALD_SERVICE_H */
