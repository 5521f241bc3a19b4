//! `vmcore save`: filter a dump by makedumpfile dump level and write it kdump-compressed.

pub mod filter;
