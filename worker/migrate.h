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

#endif
