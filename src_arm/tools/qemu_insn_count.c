/* qemu_insn_count: a TCG plugin for qemu-user that counts executed guest instructions.
 *
 *   qemu-arm -plugin build-host/lib/qemu_insn_count.so,out=COUNT_FILE ./prog args...
 *
 * At exit it writes the count (a decimal integer and a newline) to COUNT_FILE, or, without
 * out=, prints "insns: N" through qemu's log (add -d plugin to see it).
 *
 * Split by kind: a guest that issues the marker system call (number MARK_SYSCALL, first argument
 * a bucket 0..MAX_BUCKETS-1, or MAX_BUCKETS and above for "no bucket"; rsq-decode --profile does,
 * src_arm/app/rsqm.h) has the instructions executed after each marker counted in its bucket.
 * COUNT_FILE then gets one more line per bucket that counted anything, "BUCKET N", and a line
 * "unmarked N" for the rest (process start, loading, everything outside marked regions); the
 * buckets plus "unmarked" sum to the total. Kernels reject the marker (-ENOSYS), so it does
 * nothing to the guest. Every translated block
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
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index,
                                              int64_t num, uint64_t a1, uint64_t a2, uint64_t a3,
                                              uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7,
                                              uint64_t a8);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);

#define EXPORT __attribute__((visibility("default")))

EXPORT int qemu_plugin_version = 1;

#define MARK_SYSCALL 0x7ff0 /* RSQM_MARK_SYSCALL */
#define MAX_BUCKETS 16

static uint64_t insns;
static char out_path[4096];
/* bucket counts: the running bucket gets insns - since when the next marker comes */
static uint64_t bucket[MAX_BUCKETS + 1]; /* [MAX_BUCKETS]: unmarked */
static uint64_t since;
static int cur = MAX_BUCKETS, marked;

static void close_interval(void)
{
    bucket[cur] += insns - since;
    since = insns;
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    (void)id, (void)vcpu_index, (void)a2, (void)a3, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
    if (num != MARK_SYSCALL)
        return;
    close_interval();
    cur = a1 < MAX_BUCKETS ? (int)a1 : MAX_BUCKETS;
    marked = 1;
}

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
    char line[64 * (MAX_BUCKETS + 2)];
    int n = snprintf(line, sizeof line, "%" PRIu64 "\n", insns);
    if (marked) {
        close_interval();
        for (int b = 0; b < MAX_BUCKETS; b++)
            if (bucket[b])
                n += snprintf(line + n, sizeof line - (size_t)n, "%d %" PRIu64 "\n", b, bucket[b]);
        snprintf(line + n, sizeof line - (size_t)n, "unmarked %" PRIu64 "\n", bucket[MAX_BUCKETS]);
    }
    if (!out_path[0]) {
        char msg[sizeof line + 16];
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
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
