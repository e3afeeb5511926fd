/* SPDX-License-Identifier: MIT */
/* Leveled logging to stderr, one line per message, printf-checked. */
#ifndef SPILLWAY_LOG_H
#define SPILLWAY_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* -EINVAL for an unknown name ("error", "warn", "info", "debug"). */
int log_set_level_name(const char *name);
void log_set_level(enum log_level level);
void log_set_ident(const char *ident);
int log_enabled(enum log_level level);

__attribute__((format(printf, 2, 3)))
void log_msg(enum log_level level, const char *fmt, ...);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
