/* An AVX2 CPU without AVX-512 or VNNI, as the CPU-dispatching libraries see it.
 *
 * tools/avx2/emulate.py copies ai_edge_litert (XNNPACK), onnxruntime (MLAS), NumPy's OpenBLAS and
 * TensorFlow's two main libraries with every `cpuid` instruction (0f a2, located by objdump) replaced by `ud2` (0f 0b), and runs a
 * command with this library in LD_PRELOAD. Its SIGILL handler executes the real `cpuid` for a
 * patched site, clears the AVX-512, AVX-VNNI and AMX bits, and resumes after the instruction, so
 * those libraries choose their AVX2 kernels on an AVX-512 host. A `ud2` outside the patched copies
 * (a real trap) gets the default action. NEIPALETTE_CPUID_LOG=1 prints how many were emulated. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static volatile long emulated;
static const char *marker;  /* the patched copies live under a folder whose path contains this */

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

void neipalette_masked_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    cpuid(leaf, sub, r);
    if (leaf == 7 && sub == 0) {
        /* EBX: AVX512F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31 */
        r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
        /* ECX: VBMI 1, VBMI2 6, VNNI 11, BITALG 12, VPOPCNTDQ 14 */
        r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, AMX-BF16 22, AVX512-FP16 23, AMX-TILE 24, AMX-INT8 25 */
        r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        /* EAX: AVX-VNNI 4, AVX512-BF16 5, AMX-FP16 21, AVX-IFMA 23; EDX: AVX-VNNI-INT8 4, AVX-NE-CONVERT 5, AVX10 19 */
        r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
        r[3] &= ~((1u << 4) | (1u << 5) | (1u << 19));
    } else if (leaf == 0x24) {
        r[0] = r[1] = r[2] = r[3] = 0;  /* AVX10 */
    }
}

static void on_sigill(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = (ucontext_t *)context;
    unsigned char *ip = (unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
    Dl_info where;
    if (ip[0] == 0x0f && ip[1] == 0x0b && dladdr(ip, &where) && where.dli_fname && strstr(where.dli_fname, marker)) {
        uint32_t r[4];
        neipalette_masked_cpuid((uint32_t)uc->uc_mcontext.gregs[REG_RAX], (uint32_t)uc->uc_mcontext.gregs[REG_RCX], r);
        uc->uc_mcontext.gregs[REG_RAX] = r[0];
        uc->uc_mcontext.gregs[REG_RBX] = r[1];
        uc->uc_mcontext.gregs[REG_RCX] = r[2];
        uc->uc_mcontext.gregs[REG_RDX] = r[3];
        uc->uc_mcontext.gregs[REG_RIP] += 2;
        __atomic_add_fetch(&emulated, 1, __ATOMIC_RELAXED);
        return;
    }
    (void)info;
    signal(sig, SIG_DFL);  /* a real illegal instruction: die as without this library */
}

long neipalette_cpuid_emulated(void) { return emulated; }

static void report(void) {
    char line[96];
    int n = snprintf(line, sizeof line, "cpuid_mask: %ld cpuid instructions emulated\n", (long)emulated);
    if (n > 0) { ssize_t ignored = write(2, line, (size_t)n); (void)ignored; }
}

__attribute__((constructor)) static void install(void) {
    marker = getenv("NEIPALETTE_CPUID_SITE");
    if (!marker || !*marker) marker = "/avx2-emulation/";
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigill;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGILL, &sa, NULL);
    const char *log = getenv("NEIPALETTE_CPUID_LOG");
    if (log && *log == '1') atexit(report);
}
