// libkvmx: System -> Vm -> Vcpu over the <linux/kvm.h> ioctl ABI.
#pragma once

#include "kvmx/error.hpp"
#include "kvmx/exit.hpp"
#include "kvmx/fd.hpp"
#include "kvmx/ioctl.hpp"
#include "kvmx/memory.hpp"
#include "kvmx/names.hpp"
#include "kvmx/stats.hpp"
#include "kvmx/system.hpp"
#include "kvmx/vcpu.hpp"
#include "kvmx/vm.hpp"
