#pragma once
// Boost.Test helpers for results that hold a value or an error (etcd_result, api_result),
// shared by the codec and client tests. describe(error) is found next to the error type.
#include <boost/test/unit_test.hpp>
#include <variant>

namespace nm::test {

template <class T, class E>
T const& value_of(std::variant<T, E> const& r) {
    if (auto const* e = std::get_if<E>(&r)) BOOST_FAIL("unexpected error: " << describe(*e));
    return std::get<T>(r);
}

template <class T, class E>
E const& error_of(std::variant<T, E> const& r) {
    BOOST_REQUIRE_MESSAGE(std::holds_alternative<E>(r), "expected an error");
    return std::get<E>(r);
}

}  // namespace nm::test
