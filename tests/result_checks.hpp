#pragma once
// Boost.Test helpers for etcd_result values, shared by the codec and client tests.
#include <boost/test/unit_test.hpp>
#include <variant>

#include "etcd/etcd_types.hpp"

namespace nm::test {

template <class T>
T const& value_of(etcd_result<T> const& r) {
    if (auto const* e = std::get_if<etcd_error>(&r)) BOOST_FAIL("unexpected error: " << describe(*e));
    return std::get<T>(r);
}

template <class T>
etcd_error const& error_of(etcd_result<T> const& r) {
    BOOST_REQUIRE_MESSAGE(std::holds_alternative<etcd_error>(r), "expected an error");
    return std::get<etcd_error>(r);
}

}  // namespace nm::test
