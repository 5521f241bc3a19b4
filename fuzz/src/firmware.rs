//! Targets for the `sdei-fw` firmware's host-testable parsers: the DTB
//! rewriter (with the edits the firmware makes before booting Linux), the
//! RAM lookup in QEMU's DTB, and the `Image` header and boot plan.

use sdei_fw::boot::{linux_dtb_props, plan, ram_from_dtb, DtbValues, ImageHeader, LINUX_DTB_NODES};
use sdei_fw::fdt::{edit, for_each_prop, Prop};

use crate::input::{Input, Writer};

/// `u16`-length bootargs (NUL added), `initrd start: u64, end: u64`, then the
/// DTB. The firmware's edits applied to it must produce a DTB that the
/// firmware's walker reads, with the added nodes' edits present, and that
/// kexec-rs's parser reads whenever it reads the input.
pub fn fw_fdt(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut bootargs = inp.chunk().to_vec();
    bootargs.retain(|&b| b != 0);
    bootargs.push(0);
    let initrd = (inp.u64(), inp.u64());
    let dtb = inp.rest();
    let _ = ram_from_dtb(dtb);
    let mut vals = DtbValues::default();
    let mut props = [Prop {
        node: "",
        name: "",
        value: b"",
    }; 9];
    let n = linux_dtb_props(&mut vals, Some(&bootargs), Some(initrd), &mut props);
    let mut out = vec![0u8; dtb.len() * 2 + 4096];
    let Ok(len) = edit(dtb, &LINUX_DTB_NODES, &props[..n], &mut out) else {
        return;
    };
    let out = &out[..len];
    let mut found = [false; 9];
    for_each_prop(out, |path, name, value| {
        for (i, p) in props[..n].iter().enumerate() {
            let path_ok = match p.node.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix.as_bytes()),
                None => path == p.node.as_bytes(),
            };
            if path_ok && name == p.name.as_bytes() && value == p.value {
                found[i] = true;
            }
        }
    })
    .expect("the firmware's own output walks");
    for (i, p) in props[..n].iter().enumerate() {
        // The nodes the firmware adds always hold their edits; `/chosen` and
        // `/cpus/cpu@*` are edited only where the input has them.
        if LINUX_DTB_NODES.contains(&p.node) {
            assert!(found[i], "edit {p:?} missing from the output");
        }
    }
    if kexec_rs::fdt::Fdt::parse(dtb).is_ok() {
        kexec_rs::fdt::Fdt::parse(out).expect("the firmware's output parses in kexec-rs");
    }
}

/// Seeds: the sample DTB with two bootargs.
pub fn seeds_fw_fdt() -> Vec<Vec<u8>> {
    let dtb = crate::kexec::sample_dtb();
    let mut w = Writer::default();
    w.chunk(b"console=ttyAMA0 earlycon")
        .u64(0x4800_0000)
        .u64(0x4810_0000)
        .bytes(&dtb);
    let a = w.finish();
    w.chunk(b"").u64(0).u64(0).bytes(&dtb);
    vec![a, w.finish()]
}

/// `ram_base: u64, ram_size: u64, kernel_size: u64, initrd_size: u64`, then
/// the first bytes of an `Image`: parse the header and plan the boot. A plan
/// must fit in RAM, in order.
pub fn fw_image(data: &[u8]) {
    let mut inp = Input::new(data);
    let (ram_base, ram_size, kernel_size, initrd_size) =
        (inp.u64(), inp.u64(), inp.u64(), inp.u64());
    let Ok(h) = ImageHeader::parse(inp.rest()) else {
        return;
    };
    if let Ok(p) = plan(ram_base, ram_size, &h, kernel_size, initrd_size) {
        assert!(p.kernel <= p.kernel_end, "{p:?}");
        if let Some((s, e)) = p.initrd {
            assert!(p.kernel_end <= s && s <= e, "{p:?}");
        }
    }
}

/// Seeds: QEMU virt RAM and a 30 MiB kernel.
pub fn seeds_fw_image() -> Vec<Vec<u8>> {
    let img = crate::kexec::arm64_image(64, 0, 0x200_0000, 0xa);
    let mut w = Writer::default();
    w.u64(0x4000_0000)
        .u64(0x8000_0000)
        .u64(0x1e0_0000)
        .u64(0x100_0000)
        .bytes(&img);
    vec![w.finish()]
}
