from bench.predicates import all_of, any_of, changed, equals, falling, greater, less, not_, rising, within


def test_simple_predicates_and_descriptions():
    assert within(1, 2)(1.5) and not within(1, 2)(2.5)
    assert str(within(0.4, 0.6)) == "within 0.4..0.6"
    assert equals("NADIR")("NADIR") and not equals(3)("NADIR")
    assert equals(1.0, tol=0.1)(1.05)
    assert greater(1)(2) and less(1)(0)
    assert str(all_of(greater(1), less(3))) == "(> 1) and (< 3)"
    assert any_of(equals(1), equals(2))(2)
    assert not_(equals(1))(2) and str(~equals(1)) == "not (== 1)"


def test_history_aware_predicates():
    p = changed()
    p.prime(5)
    assert not p(5) and p(6)
    assert changed(from_=1)(2)
    r = rising()
    r.prime(10)
    assert not r(9) and r(11)
    f = falling()
    assert not f(3) and f(2)


def test_type_mismatch_is_not_satisfied():
    assert not greater(1)("NADIR")
