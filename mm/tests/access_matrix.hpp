// SPDX-License-Identifier: GPL-2.0
//
// The access-permutation matrix: every combination of U/S, R/W and XD in
// each paging-structure entry of a translation, times the access (read,
// write, fetch; user, explicit and implicit supervisor), CR0.WP, CR4.SMEP,
// CR4.SMAP, RFLAGS.AC and EFER.NXE, with the outcome the SDM's "Access
// Rights" and "Page-Fault Exceptions" sections give for it.
//
// Written as the SDM states the rules, as lists of what is *allowed*, with
// no reference to the walker, so the walker's unit tests (mm/tests) and the
// in-guest `mmu` selftest suite can share one oracle.  Plain C++, no test
// framework.
#pragma once

#include <cstdint>
#include <string>

namespace kvmx_access {

enum class Op { Read, Write, Fetch };
enum class Mode { User, Supervisor, Implicit };	// Implicit: supervisor-mode, implicit

struct Access {
	Op op;
	Mode mode;
};

inline constexpr Access kAccesses[] = {
	{ Op::Read, Mode::User },       { Op::Write, Mode::User },
	{ Op::Fetch, Mode::User },      { Op::Read, Mode::Supervisor },
	{ Op::Write, Mode::Supervisor }, { Op::Fetch, Mode::Supervisor },
	{ Op::Read, Mode::Implicit },   { Op::Write, Mode::Implicit },
};

struct Cpu {
	bool wp, smep, smap, ac, nxe;

	// All 32 combinations, numbered 0..31.
	static Cpu FromIndex(unsigned int i)
	{
		return { !!(i & 1), !!(i & 2), !!(i & 4), !!(i & 8), !!(i & 16) };
	}
};

// One entry's rights bits, as the guest wrote them.
struct Entry {
	bool user, writable, xd;
};

struct Outcome {
	bool fault;
	bool rsvd;		// the fault is a reserved-bit violation (XD with NXE=0)
	uint32_t error_code;
	bool sets_dirty;	// on success: a write sets D in the leaf
};

// @entries: the entries that carry rights (every level but PAE's PDPTE);
// @has_xd: 64-bit entries (PAE, 4-level, 5-level), where XD exists.
template <typename It>
Outcome Expected(It first, It last, bool has_xd, const Cpu &cpu, const Access &a)
{
	bool user_page = true, writable = true, xd = false;

	for (It e = first; e != last; ++e) {
		user_page = user_page && e->user;
		writable = writable && e->writable;
		xd = xd || e->xd;
	}

	uint32_t ec = 0;
	if (a.op == Op::Write)
		ec |= 1u << 1;
	if (a.mode == Mode::User)
		ec |= 1u << 2;
	// I/D: a fetch, with SMEP or with XD in use (CR4.PAE = 1 and NXE = 1).
	if (a.op == Op::Fetch && (cpu.smep || (has_xd && cpu.nxe)))
		ec |= 1u << 4;

	// With EFER.NXE = 0 the XD bit is reserved: P = 1, RSVD = 1.
	if (has_xd && xd && !cpu.nxe)
		return { true, true, ec | 1u | (1u << 3), false };

	bool executable = !(has_xd && cpu.nxe && xd);
	bool explicit_ac = a.mode == Mode::Supervisor && cpu.ac;
	bool ok;

	switch (a.mode) {
	case Mode::User:
		// User-mode accesses reach user-mode addresses only.
		if (a.op == Op::Read)
			ok = user_page;
		else if (a.op == Op::Write)
			ok = user_page && writable;
		else
			ok = user_page && executable;
		break;
	default:
		if (a.op == Op::Fetch) {
			// Supervisor fetches: executable supervisor pages, and
			// executable user pages unless SMEP.
			ok = executable && (!user_page || !cpu.smep);
		} else {
			// SMAP: user-mode data only by explicit accesses with AC=1.
			bool smap_ok = !user_page || !cpu.smap || explicit_ac;
			bool wp_ok = a.op == Op::Read || !cpu.wp || writable;

			ok = smap_ok && wp_ok;
		}
		break;
	}
	if (!ok)
		return { true, false, ec | 1u, false };
	return { false, false, 0, a.op == Op::Write };
}

inline std::string Describe(const Cpu &c, const Access &a)
{
	static const char *const ops[] = { "read", "write", "fetch" };
	static const char *const modes[] = { "user", "supervisor", "implicit" };
	std::string s = std::string(modes[int(a.mode)]) + " " + ops[int(a.op)];

	s += c.wp ? " WP" : "";
	s += c.smep ? " SMEP" : "";
	s += c.smap ? " SMAP" : "";
	s += c.ac ? " AC" : "";
	s += c.nxe ? " NXE" : "";
	return s;
}

} // namespace kvmx_access
