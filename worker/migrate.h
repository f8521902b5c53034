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
