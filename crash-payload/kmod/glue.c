// SPDX-License-Identifier: GPL-2.0
/*
 * sdei-stop: the crash-stop SDEI rung for arm64 kernels that lack the upstream one
 * (CONFIG_ARM_SDEI_NMI). When the kernel panics, CPUs that ignored the stop IPI (spinning
 * with interrupts, or all of DAIF, masked) are signalled SDEI event 0 by firmware; each
 * saves its interrupted registers as its crash note, goes offline, masks SDEI and parks, so
 * the vmcore has every CPU.
 *
 *   insmod sdei-stop.ko          (with crash_kexec_post_notifiers on: command line or its sysfs parameter)
 *
 * This file is only the glue a kernel build needs; the protocol (request words, the
 * escalation ladder and its timing, the stop routine, the NT_PRSTATUS note) is crash-payload's
 * Rust core, linked in as rust_core.o (crash-payload/kmod/src/, see build.sh).
 *
 * At load:
 *  - refuses (-EOPNOTSUPP) if the kernel has its own SDEI stop rung: CONFIG_ARM_SDEI_NMI, or
 *    its symbols (sdei_nmi_*) in kallsyms;
 *  - refuses (-ENODEV) without SDEI: no DT "arm,sdei-1.0" node / ACPI SDEI table, or
 *    SDEI_VERSION failing;
 *  - finds the SDEI driver's unexported sdei_event_register/enable/disable/unregister and
 *    set_cpu_online through kallsyms_lookup_name (itself found with a kprobe: 6.1 exports
 *    neither), and each CPU's crash-notes buffer from /sys/devices/system/cpu/cpuN/crash_notes
 *    (the physical address kexec-tools and kexec-rs put in the elfcorehdr; crash_notes is
 *    neither exported nor in kallsyms without CONFIG_KALLSYMS_ALL);
 *  - registers and enables event 0 on every CPU through Linux's own SDEI driver, whose entry
 *    code (__sdei_asm_handler) handles the KPTI trampoline and the SDEI stacks;
 *  - installs a panic notifier of the highest priority. With crash_kexec_post_notifiers,
 *    panic() runs crash_smp_send_stop() (the IPI rung, 1 s), then this notifier, then
 *    __crash_kexec(): the notes are in place before the crash kernel starts.
 * Unload: notifier removed, event 0 disabled and unregistered.
 */
#define pr_fmt(fmt) "sdei-stop: " fmt

#include <linux/module.h>
#include <linux/kprobes.h>
#include <linux/notifier.h>
#include <linux/panic_notifier.h>
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/cpumask.h>
#include <linux/fs.h>
#include <linux/of.h>
#include <linux/acpi.h>
#include <linux/arm-smccc.h>
#include <linux/arm_sdei.h>
#include <linux/sched.h>
#include <linux/mm.h>
#include <linux/io.h>
#include <linux/string.h>
#include <linux/kernel.h>
#include <asm/cputype.h>
#include <asm/ptrace.h>
#include <asm/daifflags.h>
#include <asm/barrier.h>

/* ---------------------------------------------------------------- the Rust core */

/* Conduit codes sdei_stop_setup() takes. */
#define SDEI_STOP_SMC 1
#define SDEI_STOP_HVC 2

bool sdei_stop_setup(u32 conduit, u32 nr_cpu_ids);
bool sdei_stop_check_firmware(void);
bool sdei_stop_check_event0(void);
void sdei_stop_set_mpidr(u32 cpu, u64 mpidr);
bool sdei_stop_set_note(u32 cpu, void *buf, size_t size);
void sdei_stop_reset(void);
u32 sdei_stop_on_panic(u32 self_cpu);
int sdei_stop_on_event(u32 cpu, const u64 *regs);

/* Called by the Rust core (src/kernel.rs). */
void sdei_stop_glue_print(u32 level, const char *msg, size_t len);
bool sdei_stop_glue_cpu_online(u32 cpu);
void sdei_stop_glue_set_offline(u32 cpu);
s32 sdei_stop_glue_current_pid(void);
void sdei_stop_glue_show_cpu(u32 cpu, const char *how, size_t how_len, const u64 *r, s32 pid);
void __noreturn sdei_stop_glue_halt(const char *msg, size_t len);

/* The Rust core reads the interrupted context as user_pt_regs: x0..x30, sp, pc, pstate. */
static_assert(offsetof(struct pt_regs, user_regs) == 0);
static_assert(offsetof(struct pt_regs, sp) == 31 * 8);
static_assert(offsetof(struct pt_regs, pc) == 32 * 8);
static_assert(offsetof(struct pt_regs, pstate) == 33 * 8);

/* ---------------------------------------------------------------- kernel services for Rust */

void sdei_stop_glue_print(u32 level, const char *msg, size_t len)
{
	switch (level) {
	case 0:
		pr_emerg("%.*s\n", (int)len, msg);
		break;
	case 3:
		pr_err("%.*s\n", (int)len, msg);
		break;
	default:
		pr_info("%.*s\n", (int)len, msg);
		break;
	}
}

bool sdei_stop_glue_cpu_online(u32 cpu)
{
	return cpu < nr_cpu_ids && cpu_online(cpu);
}

static void (*set_cpu_online_fn)(unsigned int cpu, bool online);

/* The stop acknowledgement: the note written before (full barrier), then the online bit. */
void sdei_stop_glue_set_offline(u32 cpu)
{
	if (cpu >= nr_cpu_ids || !set_cpu_online_fn)
		return;
	smp_mb();
	set_cpu_online_fn(cpu, false);
}

s32 sdei_stop_glue_current_pid(void)
{
	return current->pid;
}

void sdei_stop_glue_show_cpu(u32 cpu, const char *how, size_t how_len, const u64 *r, s32 pid)
{
	pr_emerg("CPU%u %.*s: pc %pS lr %pS sp %016llx pstate %08llx pid %d\n", cpu,
		 (int)how_len, how, (void *)r[32], (void *)r[30], r[31], r[33], pid);
}

void __noreturn sdei_stop_glue_halt(const char *msg, size_t len)
{
	pr_emerg("%.*s: parking CPU%u\n", (int)len, msg, raw_smp_processor_id());
	local_daif_mask();
	for (;;)
		wfi();
}

/* ---------------------------------------------------------------- kernel symbols */

typedef unsigned long (*kallsyms_lookup_name_t)(const char *name);
typedef int (*sdei_register_t)(u32 event, sdei_event_callback *cb, void *arg);
typedef int (*sdei_event_t)(u32 event);

static kallsyms_lookup_name_t lookup_name;
static sdei_register_t sdei_register;
static sdei_event_t sdei_enable, sdei_disable, sdei_unregister;

/* 6.1 does not export kallsyms_lookup_name; a kprobe on it yields its address. */
static int find_kallsyms(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	int err = register_kprobe(&kp);

	if (err < 0) {
		pr_err("cannot find kallsyms_lookup_name (kprobe: %d; CONFIG_KPROBES?)\n", err);
		return -ENOENT;
	}
	lookup_name = (kallsyms_lookup_name_t)kp.addr;
	unregister_kprobe(&kp);
	return 0;
}

static unsigned long sym(const char *name)
{
	return lookup_name ? lookup_name(name) : 0;
}

/* The upstream SDEI stop rung (drivers/firmware/arm_sdei_nmi.c). */
static const char *const upstream_rung[] = {
	"sdei_nmi_active", "sdei_nmi_stop_cpus", "sdei_nmi_trigger_cpumask_backtrace",
};

static int check_no_upstream_rung(void)
{
	int i;

	if (IS_ENABLED(CONFIG_ARM_SDEI_NMI)) {
		pr_err("this kernel has its own SDEI stop rung (CONFIG_ARM_SDEI_NMI=y); not loading\n");
		return -EOPNOTSUPP;
	}
	for (i = 0; i < ARRAY_SIZE(upstream_rung); i++) {
		if (sym(upstream_rung[i])) {
			pr_err("this kernel has its own SDEI stop rung (%s in kallsyms, CONFIG_ARM_SDEI_NMI); not loading\n",
			       upstream_rung[i]);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

static int find_sdei_driver(void)
{
	sdei_register = (sdei_register_t)sym("sdei_event_register");
	sdei_enable = (sdei_event_t)sym("sdei_event_enable");
	sdei_disable = (sdei_event_t)sym("sdei_event_disable");
	sdei_unregister = (sdei_event_t)sym("sdei_event_unregister");
	set_cpu_online_fn = (void (*)(unsigned int, bool))sym("set_cpu_online");
	if (!sdei_register || !sdei_enable || !sdei_disable || !sdei_unregister) {
		pr_err("Linux's SDEI driver entry points (sdei_event_register/enable/disable/unregister) are not in kallsyms: CONFIG_ARM_SDE_INTERFACE is off\n");
		return -ENODEV;
	}
	if (!set_cpu_online_fn) {
		pr_err("set_cpu_online not found in kallsyms\n");
		return -ENOENT;
	}
	return 0;
}

/* ---------------------------------------------------------------- firmware description */

/* The SDEI conduit as the firmware describes it, or 0 when SDEI is not described. */
static u32 sdei_conduit(void)
{
	struct device_node *np = of_find_compatible_node(NULL, NULL, "arm,sdei-1.0");
	const char *method = NULL;
	u32 c = 0;

	if (np) {
		if (!of_property_read_string(np, "method", &method)) {
			if (!strcmp(method, "smc"))
				c = SDEI_STOP_SMC;
			else if (!strcmp(method, "hvc"))
				c = SDEI_STOP_HVC;
		}
		of_node_put(np);
		if (!c)
			pr_err("DT %s: method \"%s\" is neither smc nor hvc\n", "arm,sdei-1.0",
			       method ? method : "(none)");
		return c;
	}
#ifdef CONFIG_ACPI
	if (!acpi_disabled) {
		struct acpi_table_header *t;

		if (ACPI_SUCCESS(acpi_get_table(ACPI_SIG_SDEI, 0, &t))) {
			acpi_put_table(t);
			/* ACPI: SDEI uses the PSCI/SMCCC conduit. */
			switch (arm_smccc_1_1_get_conduit()) {
			case SMCCC_CONDUIT_SMC:
				return SDEI_STOP_SMC;
			case SMCCC_CONDUIT_HVC:
				return SDEI_STOP_HVC;
			default:
				return 0;
			}
		}
	}
#endif
	return 0;
}

/* ---------------------------------------------------------------- crash-notes buffers */

static int read_text(const char *path, char *buf, size_t len)
{
	struct file *f = filp_open(path, O_RDONLY, 0);
	loff_t pos = 0;
	ssize_t n;

	if (IS_ERR(f))
		return PTR_ERR(f);
	n = kernel_read(f, buf, len - 1, &pos);
	filp_close(f, NULL);
	if (n < 0)
		return n;
	buf[n] = 0;
	return 0;
}

/* CPU cpu's crash-notes buffer, from the sysfs file the kexec loaders read. */
static int find_crash_notes(unsigned int cpu)
{
	char path[64], text[32];
	unsigned long long pa;
	unsigned long size;
	int err;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%u/crash_notes", cpu);
	err = read_text(path, text, sizeof(text));
	if (!err)
		err = kstrtoull(strim(text), 16, &pa);
	if (err) {
		pr_err("cannot read %s (%d): is sysfs mounted, CONFIG_KEXEC_CORE set?\n", path, err);
		return err;
	}
	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%u/crash_notes_size", cpu);
	err = read_text(path, text, sizeof(text));
	if (!err)
		err = kstrtoul(strim(text), 10, &size);
	if (err) {
		pr_err("cannot read %s (%d)\n", path, err);
		return err;
	}
	if (!pfn_valid(PHYS_PFN(pa)) || !pfn_valid(PHYS_PFN(pa + size - 1))) {
		pr_err("CPU%u crash notes at %#llx are not in the linear map\n", cpu, pa);
		return -EFAULT;
	}
	if (!sdei_stop_set_note(cpu, phys_to_virt(pa), size)) {
		pr_err("CPU%u crash notes: %lu bytes at %#llx, expected 424 bytes, 8-aligned\n", cpu,
		       size, pa);
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------- callbacks */

/* Linux's SDEI callback (NMI-like context on the target CPU, DAIF masked). */
static int sdei_stop_event(u32 event, struct pt_regs *regs, void *arg)
{
	return sdei_stop_on_event(raw_smp_processor_id(), (const u64 *)&regs->user_regs);
}

/* Each CPU records its own MPIDR when it comes online (cpu_logical_map is not exported). */
static int sdei_stop_cpu_online(unsigned int cpu)
{
	sdei_stop_set_mpidr(cpu, read_cpuid_mpidr() & MPIDR_HWID_BITMASK);
	return 0;
}

static int sdei_stop_panic(struct notifier_block *nb, unsigned long action, void *data)
{
	sdei_stop_on_panic(raw_smp_processor_id());
	return NOTIFY_DONE;
}

static struct notifier_block sdei_stop_panic_nb = {
	.notifier_call = sdei_stop_panic,
	.priority = INT_MAX, /* first: before any notifier that might not return */
};

static int cpuhp_state = -1;

/* ---------------------------------------------------------------- load / unload */

static int __init sdei_stop_init(void)
{
	char *param;
	unsigned int cpu;
	u32 conduit;
	int err;

	err = find_kallsyms();
	if (err)
		return err;
	err = check_no_upstream_rung();
	if (err)
		return err;
	conduit = sdei_conduit();
	if (!conduit) {
		pr_err("no SDEI firmware described (no DT \"arm,sdei-1.0\" node, no ACPI SDEI table); not loading\n");
		return -ENODEV;
	}
	if (!sdei_stop_setup(conduit, nr_cpu_ids))
		return -EINVAL;
	if (!sdei_stop_check_firmware())
		return -ENODEV;
	err = find_sdei_driver();
	if (err)
		return err;
	for_each_possible_cpu(cpu) {
		err = find_crash_notes(cpu);
		if (err)
			return err;
	}

	err = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "sdei_stop:online", sdei_stop_cpu_online, NULL);
	if (err < 0) {
		pr_err("cpuhp_setup_state: %d\n", err);
		return err;
	}
	cpuhp_state = err;

	/* Event 0 is private: the driver registers and enables it on every online CPU. */
	err = sdei_register(0, sdei_stop_event, NULL);
	if (err) {
		pr_err("sdei_event_register(0): %d\n", err);
		goto out_cpuhp;
	}
	err = sdei_enable(0);
	if (err) {
		pr_err("sdei_event_enable(0): %d\n", err);
		goto out_unregister;
	}
	if (!sdei_stop_check_event0()) {
		err = -EIO;
		goto out_disable;
	}
	err = atomic_notifier_chain_register(&panic_notifier_list, &sdei_stop_panic_nb);
	if (err)
		goto out_disable;

	/*
	 * The parameter is writable at run time (kexec-rs kdump start sets it), and 6.1 does not
	 * export the variable to modules: read it where the kernel publishes it.
	 */
	param = kzalloc(PAGE_SIZE, GFP_KERNEL);
	if (param &&
	    !read_text("/sys/module/kernel/parameters/crash_kexec_post_notifiers", param, PAGE_SIZE) &&
	    param[0] != 'Y')
		pr_warn("crash_kexec_post_notifiers is off: a loaded crash kernel starts before this module can stop the CPUs the IPI missed (set it on the command line or write Y to /sys/module/kernel/parameters/crash_kexec_post_notifiers)\n");
	kfree(param);

	pr_info("ready: SDEI event 0 registered and enabled on CPUs %*pbl; panic notifier installed\n",
		cpumask_pr_args(cpu_online_mask));
	return 0;

out_disable:
	sdei_disable(0);
out_unregister:
	sdei_unregister(0);
out_cpuhp:
	cpuhp_remove_state_nocalls(cpuhp_state);
	return err;
}

static void __exit sdei_stop_exit(void)
{
	int err;

	atomic_notifier_chain_unregister(&panic_notifier_list, &sdei_stop_panic_nb);
	err = sdei_disable(0);
	if (err)
		pr_warn("sdei_event_disable(0): %d\n", err);
	err = sdei_unregister(0);
	if (err)
		pr_warn("sdei_event_unregister(0): %d\n", err);
	cpuhp_remove_state_nocalls(cpuhp_state);
	sdei_stop_reset();
	pr_info("unloaded: SDEI event 0 disabled and unregistered\n");
}

module_init(sdei_stop_init);
module_exit(sdei_stop_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Crash-stop over SDEI event 0 for CPUs the stop IPI cannot reach (kexec-rs)");
