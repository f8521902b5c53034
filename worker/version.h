/* version.h - the orderd version string */
#ifndef OD_VERSION_H
#define OD_VERSION_H
const char *orderd_version(void);
#endif
