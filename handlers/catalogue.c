/* catalogue.c - helpers shared by the catalogue handlers: code fields and
 * the vendor ownership rule */
#include "catalogue.h"

#include <stdio.h>
#include <string.h>

#include "money.h"

int
catalogue_field_code(const json_t *obj, const char *name, int required, int len,
                     char *out, char *err, size_t errlen)
{
    char buf[16];
    int rc = json_field_str(obj, name, required, buf, sizeof(buf), err, errlen);

    const json_t *v = json_object_get(obj, name);

    if (rc == 0 &&
        (strlen(buf) != (size_t)len ||
         !(len == 3 ? money_currency_valid(buf) : money_country_valid(buf))))
        rc = -1;
    if (rc < 0) {
        /* present but malformed: say what the format is */
        if (v != NULL && !json_is_null(v))
            od_err(err, errlen, "field '%s' must be %d upper-case letters",
                   name, len);
        return -1;
    }
    if (rc == 0)
        memcpy(out, buf, (size_t)len + 1);
    return rc;
}

int
catalogue_may_touch(const cmd_env_t *env, const char *vendor_id)
{
    if (env->role == ROLE_ADMIN)
        return 1;
    return env->role == ROLE_VENDOR && strcmp(env->actor_id, vendor_id) == 0;
}
