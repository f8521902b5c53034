/* notify.h - systemd's notification protocol: readiness, stopping, status
 * and the watchdog keep-alive */
#ifndef OD_NOTIFY_H
#define OD_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

typedef struct notify notify_t;

/*
 * The keep-alive's question, asked every ping interval from its thread:
 * 1 when everything that must turn has turned within stall_us
 * (microseconds), 0 when something is stuck. Either way status (len
 * bytes) receives one line for systemctl status.
 */
typedef int (*notify_check_fn)(void *arg, int64_t stall_us, char *status,
                               size_t len);

/*
 * Starts the keep-alive thread when a service manager listens
 * (NOTIFY_SOCKET): with a watchdog (WATCHDOG_USEC) it pings every quarter
 * of the interval while check says healthy and withholds the ping while it
 * does not; without one it only keeps STATUS current. Returns NULL when
 * nobody listens or the thread cannot start (then every other call is a
 * harmless no-op; a thread that cannot start is logged). check and arg must
 * outlive notify_stop.
 */
notify_t *notify_start(notify_check_fn check, void *arg);
/* READY=1 with a STATUS line (status may be NULL). */
void notify_ready(const char *status);
/* STOPPING=1 with a STATUS line (status may be NULL). The keep-alive goes
 * on pinging without asking check: the shutdown has its own watchdog. */
void notify_stopping(notify_t *n, const char *status);
/* STATUS=status alone. */
void notify_status(const char *status);
/* Stops and joins the keep-alive thread; n may be NULL. */
void notify_stop(notify_t *n);

#endif
