#pragma once
// What is checked before anything starts, in the files the flags name: nodeos and its two
// config dirs (and the plugins their config.ini must load), the TLS files, the ranges of
// the numbers, and the etcd user's password file. Each failure is a usage_error that names
// its option.
#include "app/options.hpp"

namespace nm {

// The daemon's checks (the commands need none of them).
void preflight(config const& c);

// The etcd user's password: the one line of --etcd-password-file, a file that other users
// cannot read, into c.etcd_password. Nothing to do without a user.
void read_password(config& c);

}  // namespace nm
