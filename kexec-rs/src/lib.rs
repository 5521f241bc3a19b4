//! kexec-rs: kexec loader and kdump service for arm64 (being written).
