// SPDX-License-Identifier: GPL-2.0
/*
 * wedge: test scaffolding that wedges one CPU, standing in for LKDTM's HARDLOCKUP
 * (Debian's arm64 kernel has no LKDTM).
 *
 * insmod wedge.ko [cpu=N] [mode=irq|daif]
 *   starts a kthread bound to CPU N (default 1) that spins forever in wedge_spin():
 *   mode=irq   after local_irq_disable() (PSTATE.I set): ignores the stop IPI;
 *   mode=daif  with D, A, I and F all masked (msr daifset, #0xf): ignores pseudo-NMI too.
 * The module can never be unloaded. insmod returns once the kthread is about to spin, so a
 * panic triggered right after it finds CPU N already wedged.
 * The spin loop is the named, non-inlined wedge_spin() so a captured pc resolves by symbol.
 */
#include <linux/module.h>
#include <linux/kthread.h>
#include <linux/delay.h>
#include <linux/cpumask.h>
#include <linux/irqflags.h>
#include <linux/string.h>

static int cpu = 1;
module_param(cpu, int, 0444);
MODULE_PARM_DESC(cpu, "CPU to wedge (default 1)");

static char *mode = "irq";
module_param(mode, charp, 0444);
MODULE_PARM_DESC(mode, "irq: spin after local_irq_disable(); daif: spin with DAIF fully masked");

static int wedge_daif;
static int wedge_started;

/* Never returns. Kept out of line so its address shows up in kallsyms as wedge_spin. */
static noinline void __noreturn wedge_spin(int daif)
{
	if (daif)
		asm volatile("msr daifset, #0xf" ::: "memory");
	else
		local_irq_disable();
	WRITE_ONCE(wedge_started, 1);
	for (;;)
		cpu_relax();
}

static int wedge_thread(void *unused)
{
	pr_info("wedge: cpu%d spinning with %s masked\n", smp_processor_id(),
		wedge_daif ? "DAIF" : "IRQs");
	wedge_spin(wedge_daif);
	return 0;
}

static int __init wedge_init(void)
{
	struct task_struct *t;
	int i;

	if (!strcmp(mode, "irq"))
		wedge_daif = 0;
	else if (!strcmp(mode, "daif"))
		wedge_daif = 1;
	else
		return -EINVAL;
	if (cpu < 0 || cpu >= nr_cpu_ids || !cpu_online(cpu))
		return -ENODEV;

	t = kthread_create(wedge_thread, NULL, "wedge/%d", cpu);
	if (IS_ERR(t))
		return PTR_ERR(t);
	kthread_bind(t, cpu);
	wake_up_process(t);

	/* Bounded wait (5 s) for the kthread to mask and start spinning. */
	for (i = 0; i < 500 && !READ_ONCE(wedge_started); i++)
		msleep(10);
	if (!READ_ONCE(wedge_started)) {
		pr_err("wedge: cpu%d did not start spinning\n", cpu);
		return 0;	/* the thread cannot be stopped any more; stay loaded */
	}
	pr_info("wedge: cpu%d wedged (mode=%s)\n", cpu, mode);
	return 0;
}
module_init(wedge_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Test scaffolding: wedge a CPU with interrupts masked");
