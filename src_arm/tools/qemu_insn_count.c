/* qemu_insn_count: a TCG plugin for qemu-user that counts executed guest instructions.
 *
 *   qemu-arm -plugin build-host/lib/qemu_insn_count.so,out=COUNT_FILE ./prog args...
 *
 * At exit it writes the count (a decimal integer and a newline) to COUNT_FILE, or, without
 * out=, prints "insns: N" through qemu's log (add -d plugin to see it). Every translated block
 * gets an inline 64-bit add of its instruction count, so the guest runs at qemu's normal
 * speed: a whole mini model counts in seconds, where the -d in_asm,exec,nochain log took
 * minutes per layer. The inline add is not atomic: count guests that run one thread
 * (rsq-decode --threads 1); qemu-user runs every guest thread as its own vCPU.
 *
 * Plugin API version 1 (qemu 7.2). Debian ships qemu-user without qemu-plugin.h, so the few
 * declarations this file needs are written out below, with the types of that version; the
 * functions are resolved from the qemu binary when it loads the plugin.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;            /* opaque: not read here */
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 = 0 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

#define EXPORT __attribute__((visibility("default")))

EXPORT int qemu_plugin_version = 1;

static uint64_t insns;
static char out_path[4096];

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns,
                                             (uint64_t)qemu_plugin_tb_n_insns(tb));
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    char line[64];
    snprintf(line, sizeof line, "%" PRIu64 "\n", insns);
    if (!out_path[0]) {
        char msg[80];
        snprintf(msg, sizeof msg, "insns: %s", line);
        qemu_plugin_outs(msg);
        return;
    }
    FILE *f = fopen(out_path, "w");
    if (!f || fputs(line, f) == EOF || fclose(f) != 0) {
        /* the guest's exit status is not ours to change: say it where the user looks */
        fprintf(stderr, "qemu_insn_count: cannot write %s: %s\n", out_path, strerror(errno));
    }
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0 && argv[i][4] && strlen(argv[i] + 4) < sizeof out_path) {
            strcpy(out_path, argv[i] + 4);
        } else {
            fprintf(stderr, "qemu_insn_count: unknown or bad argument '%s' (expected out=FILE)\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
