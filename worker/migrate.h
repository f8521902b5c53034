/* migrate.h - forward-only schema migrations from schema/NNNN_*.sql */
#ifndef OD_MIGRATE_H
#define OD_MIGRATE_H

#include "db.h"

/*
 * Applies every schema/NNNN_*.sql file of dir not yet recorded in
 * schema_migrations, in name order, each in its own transaction. A session
 * advisory lock keeps two migrators apart. *applied receives how many ran
 * (may be NULL). Returns OD_OK or OD_FATAL/OD_RETRY with err filled.
 */
od_status_t migrate_run(db_t *db, const char *dir, int *applied, char *err,
                        size_t errlen) OD_MUSTCHECK;

/*
 * Lists the migrations of dir that migrate_run would apply, in order,
 * changing nothing (not even creating schema_migrations): fn (may be NULL)
 * gets each file name, *pending (may be NULL) how many. Returns OD_OK or
 * OD_FATAL/OD_RETRY with err filled.
 */
typedef void (*migrate_pending_fn)(const char *name, void *arg);
od_status_t migrate_pending(db_t *db, const char *dir, migrate_pending_fn fn,
                            void *arg, int *pending, char *err,
                            size_t errlen) OD_MUSTCHECK;

/*
 * The directory of the migrations, into out (len bytes): configured
 * (--schema-dir, ORDERD_SCHEMA_DIR) when not empty; else the installed
 * one beside the running binary (<prefix>/bin/../share/orderd/schema,
 * found through /proc/self/exe, so an installed tree can be moved); else,
 * only for a binary in the build tree it was built in, the source tree's
 * schema/. Returns 0, or -1 with err saying where it looked.
 */
int migrate_schema_dir(const char *configured, char *out, size_t len, char *err,
                       size_t errlen) OD_MUSTCHECK;

#endif
