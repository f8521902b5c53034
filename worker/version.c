/* version.c - the orderd version string */
#include "version.h"

const char *
orderd_version(void)
{
    return "0.1.0";
}
