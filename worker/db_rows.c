/* db_rows.c - reading the rows a statement returned
 *
 * DESIGN: part of the libpq room (db*.c): the rest of orderd reads text
 * values by row and column and never sees a PGresult; a value is libpq's
 * own text (valid until the rows are freed), bytea is decoded here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

int
db_nrows(const db_rows_t *rows)
{
    return rows ? PQntuples(rows->res) : 0;
}

const char *
db_val(const db_rows_t *rows, int row, int col)
{
    return PQgetvalue(rows->res, row, col);
}

int
db_isnull(const db_rows_t *rows, int row, int col)
{
    return PQgetisnull(rows->res, row, col);
}

int64_t
db_int64(const db_rows_t *rows, int row, int col)
{
    return strtoll(PQgetvalue(rows->res, row, col), NULL, 10);
}

int
db_bool(const db_rows_t *rows, int row, int col)
{
    return PQgetvalue(rows->res, row, col)[0] == 't';
}

unsigned char *
db_bytea(const db_rows_t *rows, int row, int col, size_t *len)
{
    unsigned char *tmp, *out;

    tmp = PQunescapeBytea(
        (const unsigned char *)PQgetvalue(rows->res, row, col), len);
    if (tmp == NULL)
        return NULL;
    /* copy so the caller frees with free(), not PQfreemem() */
    out = malloc(*len + 1);
    if (out != NULL) {
        memcpy(out, tmp, *len);
        out[*len] = '\0';
    }
    PQfreemem(tmp);
    return out;
}

void
db_rows_free(db_rows_t *rows)
{
    if (rows == NULL)
        return;
    PQclear(rows->res);
    free(rows);
}
