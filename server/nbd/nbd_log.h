/* SPDX-License-Identifier: MIT */
/*
 * Warnings an NBD peer can cause (a broken handshake, a bad request, a
 * refused connection): at most NBD_LOG_BURST lines per NBD_LOG_WINDOW_S
 * seconds for all connections together; the first line after a quiet
 * spell says how many were dropped. A flood of bad connections cannot
 * flood the log or the disk.
 */
#ifndef SPILLWAY_NBD_LOG_H
#define SPILLWAY_NBD_LOG_H

#define NBD_LOG_BURST 10
#define NBD_LOG_WINDOW_S 10

__attribute__((format(printf, 1, 2)))
void nbd_log_peer(const char *fmt, ...);

#endif
