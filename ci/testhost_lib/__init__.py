"""kvmx test-host runner: boots QEMU TCG (AMD) and Bochs (Intel) test hosts.

The command line lives in cli.py; see docs/testhost.md for the contract.
"""
