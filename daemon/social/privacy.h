/*
 * privacy.h — GET /v1/users/<address>/privacy-settings, the reference service's unauthenticated
 * HTTP route that other Decentraland services read: {"private_messages_privacy":"all"} or
 * "only_friends", from social.get_settings (so "all" for a user without settings). Served
 * through the door's DoorApp.http hook on every port that serves HTTP. Loop thread.
 */
#ifndef SOCIALD_PRIVACY_H
#define SOCIALD_PRIVACY_H

#include <stdbool.h>

#include "door/http.h"
#include "store/pg_pool.h"

/* pg is borrowed until privacy_shutdown; after it, requests answer 503. */
void privacy_init(PgPool *pg);
void privacy_shutdown(void);

/* DoorApp.http: takes the privacy route (answering 400 for a malformed address at once, else
 * after one query: 200, 503 while the database is unreachable, 500 otherwise); false for any
 * other path. */
bool privacy_http(const char *method, const char *path, HttpAnswer *answer);

#endif /* SOCIALD_PRIVACY_H */
