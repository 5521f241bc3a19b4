// SPDX-License-Identifier: GPL-2.0
/*
 * sdei_probe: proves that SDEI event 0 reaches a CPU spinning with DAIF fully masked,
 * registered through the kernel's own SDEI driver (drivers/firmware/arm_sdei.c, its entry
 * path arch/arm64/kernel/entry.S __sdei_asm_handler), and measures the delivery latency.
 *
 *   insmod sdei_probe.ko [cpu=1] [rounds=20]
 *
 * 1. Finds sdei_event_register/enable/disable/unregister: Linux 6.1 does not export them to
 *    modules, so their addresses come from a kprobe on each name.
 * 2. Registers and enables event 0 (private: a cross-call registers it on every online CPU).
 * 3. Starts a kthread on CPU `cpu` that masks D, A, I and F and spins in sdei_probe_spin(),
 *    then `rounds` times signals event 0 to it with SDEI_EVENT_SIGNAL (a direct SMC: 6.1 has
 *    no kernel API for it) and waits (1 s at most) for the callback.
 *    The callback records the CPU, the interrupted pc/pstate and CNTVCT.
 * 4. Prints the first and last rounds and a summary, releases the spinner, disables and
 *    unregisters the event. All of it runs on another CPU than `cpu` (work_on_cpu).
 *    The module load fails (-ETIMEDOUT/-ENOENT/...) if any step fails, so insmod's exit
 *    status is the verdict; the lines say why.
 *
 * Build: make -C <linux-headers-VER-arm64> M=$PWD ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-
 */
#include <linux/module.h>
#include <linux/kprobes.h>
#include <linux/kthread.h>
#include <linux/delay.h>
#include <linux/workqueue.h>
#include <linux/arm_sdei.h>
#include <linux/arm-smccc.h>
#include <asm/daifflags.h>
#include <asm/cputype.h>

#ifndef SDEI_1_0_FN_SDEI_EVENT_SIGNAL
#define SDEI_1_0_FN_SDEI_EVENT_SIGNAL SDEI_1_0_FN(0x0F)
#endif

static int cpu = 1;
module_param(cpu, int, 0444);
MODULE_PARM_DESC(cpu, "CPU to spin with DAIF masked and signal (default 1)");
static int rounds = 20;
module_param(rounds, int, 0444);
MODULE_PARM_DESC(rounds, "signals to send (default 20)");

typedef int (*register_fn)(u32, sdei_event_callback *, void *);
typedef int (*event_fn)(u32);

static int spin_started, spin_release;
static u64 spin_mpidr;
static int hit, hit_cpu;
static u64 hit_pc, hit_pstate, hit_ticks;

static unsigned long lookup(const char *name)
{
	struct kprobe kp = { .symbol_name = name };
	unsigned long addr;

	if (register_kprobe(&kp) < 0)
		return 0;
	addr = (unsigned long)kp.addr;
	unregister_kprobe(&kp);
	return addr;
}

static inline u64 counter(void)
{
	isb();
	return read_sysreg(cntvct_el0);
}

/* Out of line so the interrupted pc resolves to this name. */
static noinline void sdei_probe_spin(void)
{
	unsigned long flags = local_daif_save(); /* masks D, A, I, F */

	/* cpu_logical_map() is not exported; the spinning CPU says who it is. */
	spin_mpidr = read_cpuid_mpidr() & MPIDR_HWID_BITMASK;
	WRITE_ONCE(spin_started, 1);
	while (!READ_ONCE(spin_release))
		cpu_relax();
	local_daif_restore(flags);
}

static int spin_thread(void *unused)
{
	sdei_probe_spin();
	while (!kthread_should_stop())
		msleep(1);
	return 0;
}

/* Runs in the SDEI handler (NMI-like context): record only. */
static int sdei_probe_cb(u32 event, struct pt_regs *regs, void *arg)
{
	hit_ticks = counter();
	hit_cpu = smp_processor_id();
	hit_pc = regs->pc;
	hit_pstate = regs->pstate;
	smp_store_release(&hit, 1);
	return 0;
}

/* Runs on a CPU other than `cpu` (work_on_cpu), which it signals. */
static long run_probe(void *unused)
{
	register_fn reg = (register_fn)lookup("sdei_event_register");
	event_fn enable = (event_fn)lookup("sdei_event_enable");
	event_fn disable = (event_fn)lookup("sdei_event_disable");
	event_fn unreg = (event_fn)lookup("sdei_event_unregister");
	struct task_struct *t;
	struct arm_smccc_res res;
	u64 min = U64_MAX, max = 0, sum = 0;
	int i, n, ok = 0, err;

	if (!reg || !enable || !disable || !unreg) {
		pr_err("sdei_probe: sdei_event_* not found (CONFIG_ARM_SDE_INTERFACE?)\n");
		return -ENOENT;
	}
	err = reg(0, sdei_probe_cb, NULL);
	if (err) {
		pr_err("sdei_probe: sdei_event_register(0) = %d\n", err);
		return err;
	}
	err = enable(0);
	if (err) {
		pr_err("sdei_probe: sdei_event_enable(0) = %d\n", err);
		goto out_unreg;
	}

	/*
	 * Only now start the spinner: registering a private event is a cross-call to every
	 * CPU, which a CPU with DAIF masked would never answer.
	 */
	t = kthread_create(spin_thread, NULL, "sdei_probe/%d", cpu);
	if (IS_ERR(t)) {
		err = PTR_ERR(t);
		goto out_disable;
	}
	kthread_bind(t, cpu);
	wake_up_process(t);
	for (n = 0; n < 1000 && !READ_ONCE(spin_started); n++)
		msleep(1);
	if (!READ_ONCE(spin_started)) {
		pr_err("sdei_probe: spinner did not start on cpu%d\n", cpu);
		err = -ETIMEDOUT;
		goto out_release;
	}
	pr_info("sdei_probe: cpu%d spinning with DAIF masked\n", cpu);

	for (i = 0; i < rounds; i++) {
		u64 t0, dt;

		WRITE_ONCE(hit, 0);
		t0 = counter();
		arm_smccc_1_1_smc(SDEI_1_0_FN_SDEI_EVENT_SIGNAL, 0, READ_ONCE(spin_mpidr), &res);
		if ((long)res.a0) {
			pr_err("sdei_probe: SDEI_EVENT_SIGNAL = %ld\n", (long)res.a0);
			err = -EIO;
			break;
		}
		for (n = 0; n < 100000 && !smp_load_acquire(&hit); n++)
			udelay(10);
		if (!smp_load_acquire(&hit)) {
			pr_err("sdei_probe: round %d: event 0 not delivered to cpu%d within 1 s\n", i, cpu);
			err = -ETIMEDOUT;
			break;
		}
		dt = hit_ticks - t0;
		min = min(min, dt);
		max = max(max, dt);
		sum += dt;
		ok++;
		if (i == 0 || i == rounds - 1)
			pr_info("sdei_probe: round %d: event 0 on cpu%d, interrupted pc=%pS pstate=%#llx (DAIF %s), %llu ticks\n",
				i, hit_cpu, (void *)hit_pc, hit_pstate,
				((hit_pstate >> 6) & 0xf) == 0xf ? "masked" : "NOT masked", dt);
		if (hit_cpu != cpu) {
			pr_err("sdei_probe: delivered to cpu%d, not cpu%d\n", hit_cpu, cpu);
			err = -EIO;
			break;
		}
	}
	if (ok)
		pr_info("sdei_probe: %d/%d delivered; latency signal->handler min %llu avg %llu max %llu ticks at %lu Hz\n",
			ok, rounds, min, sum / ok, max, (unsigned long)read_sysreg(cntfrq_el0));

out_release:
	/* Disable and unregister are cross-calls too: release the spinner first. */
	WRITE_ONCE(spin_release, 1);
	kthread_stop(t);
out_disable:
	disable(0);
out_unreg:
	unreg(0);
	if (!err && ok == rounds)
		pr_info("sdei_probe: PASS\n");
	return err;
}

static int __init sdei_probe_init(void)
{
	unsigned int other;

	if (cpu < 0 || cpu >= nr_cpu_ids || !cpu_online(cpu)) {
		pr_err("sdei_probe: cpu=%d is not online\n", cpu);
		return -EINVAL;
	}
	other = cpumask_any_but(cpu_online_mask, cpu);
	if (other >= nr_cpu_ids) {
		pr_err("sdei_probe: needs a second online CPU to signal from\n");
		return -EINVAL;
	}
	return work_on_cpu(other, run_probe, NULL);
}

static void __exit sdei_probe_exit(void)
{
}

module_init(sdei_probe_init);
module_exit(sdei_probe_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("SDEI event 0 delivery check for sdei-fw");
