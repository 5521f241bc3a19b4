//! Integration-test support: locating the real dumps made by tests/dumps/make-dumps.sh.
