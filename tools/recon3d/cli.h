/* cli.h - what the recon3d subcommands share: progress reporting, exit
 * codes, error printing. Each subcommand lives in cmd_<name>.c. */
#ifndef R3D_CLI_H
#define R3D_CLI_H

#include "r3d/r3d.h"

#include <stdio.h>

/* Exit codes (docs/EXIT_CODES.md). */
enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1,       /* bad command line */
    EXIT_INPUT = 2,       /* input unreadable, malformed or inconsistent */
    EXIT_UNSUPPORTED = 3, /* valid input we cannot handle yet */
    EXIT_OUTPUT = 4,      /* output could not be written */
    EXIT_NOMEM = 5,
    EXIT_NOTFOUND = 6,    /* no images / no such series */
    EXIT_PERM = 7,        /* the user's role may not do this */
    EXIT_CONFLICT = 8,    /* conflicts with the current state (e.g. store busy) */
};

int cli_exit_code(r3d_status s);
/* Print "recon3d: <message>" and return the exit code for err. */
int cli_fail(const r3d_error *err);
int cli_usage(const char *fmt, ...);

/* The tail of a command's option loop (cli.c), for an argument none of its
 * options took: "--help"/"-h" prints usage on stdout and answers EXIT_OK;
 * "-X", or any argument when input is NULL (a command without INPUT), prints
 * usage on stderr and answers EXIT_USAGE with "CMD: <unknown> -X" (unknown:
 * NULL for "unknown or incomplete option"); the first other argument becomes
 * *input (answer CLI_ARG_TAKEN, go on), a second one is "CMD: one INPUT only". */
#define CLI_ARG_TAKEN (-1)
/* The start of a command with actions (`store init`, `user add`, ...):
 * none is usage on stderr and "CMD: which action?", "--help"/"-h" prints
 * usage on stdout (EXIT_OK); otherwise CLI_ARG_TAKEN: the action is argv[1]. */
int cli_action(const char *cmd, void (*usage)(FILE *f), int argc, char **argv);
int cli_other_arg(const char *cmd, void (*usage)(FILE *f), const char *a, const char **input,
                  const char *unknown);
/* After the loop: EXIT_OK when INPUT and -o were both given, else usage on
 * stderr and "CMD: INPUT and -o <out_name> are required" (EXIT_USAGE). */
int cli_need_input_out(const char *cmd, void (*usage)(FILE *f), const char *input,
                       const char *out, const char *out_name);

/* Progress on stderr: a bar on a terminal, plain lines otherwise, nothing
 * when quiet, and nothing at all for work that ends within a second. */
typedef struct cli_progress {
    int quiet;
    int tty;
    double t0;
    double last;
    int shown;
    char stage[32];
} cli_progress;

void cli_progress_init(cli_progress *p, int quiet);
void cli_progress_cb(void *ctx, const char *stage, int64_t done, int64_t total);
void cli_progress_end(cli_progress *p);
double cli_now(void);

/* ---- commands acting on the case store (cli_store.c) ---------------------- */

typedef struct cli_store_args {
    const char *store;    /* --store DIR, else $R3D_STORE */
    const char *key_file; /* --key-file FILE, else $R3D_KEY_FILE */
    const char *user;     /* --user NAME, else $R3D_USER (or $R3D_TOKEN) */
} cli_store_args;

/* Consumes --store/--key-file/--user at argv[*i] (and its value); 1 if it did. */
int cli_store_option(cli_store_args *o, int argc, char **argv, int *i);
/* Opens the store (creating it when create); an exit code, 0 on success. */
int cli_store_open(const cli_store_args *o, int create, r3d_store **s);
/* Opens the existing store and logs in (R3D_TOKEN, or user + password),
 * filling *a and closing the store again when the log-in fails; an exit
 * code, 0 on success (then *s is open). */
int cli_store_login(const cli_store_args *o, r3d_store **s, r3d_actor *a);
/* A secret from env, else asked on the terminal without echo; 0 on success. */
int cli_read_secret(const char *prompt, const char *env, char *out, size_t cap);

/* Each cmd_<name>.c has one line, at file scope and starting in column 0,
 *     R3D_COMMAND(<two-digit order>, <name>, "<one-line summary>")
 * from which CMake builds the command table (main.c); it also declares
 * int cmd_<name>(int argc, char **argv). Summaries must not contain ';'. */
#define R3D_COMMAND(order, name, summary) int cmd_##name(int argc, char **argv);

#endif
