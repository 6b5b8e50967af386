from __future__ import annotations

from pnyx.services.figures import MAX_STEP_S, Figures

T0 = 1_700_000_040.0  # a minute boundary


def test_peak_listening_time_and_speakers() -> None:
    f = Figures(sample_s=1.0, max_points=100)
    for i, n in enumerate([0, 2, 5, 3, 3]):
        f.step(T0 + i, n, unique=n, speaking=["ann"] if i >= 3 else [])
    assert (f.peak, f.peak_at) == (5, T0 + 2)
    assert f.listening_s == 2 + 5 + 3 + 3  # each step counts the listeners of its end
    assert f.speakers == {"ann": 2.0}
    f.step(T0 + 1000, 3, unique=5, speaking=[])  # a long gap counts MAX_STEP_S at most
    assert f.listening_s == 13 + 3 * MAX_STEP_S


def test_joins_per_minute_from_the_distinct_count() -> None:
    f = Figures(sample_s=1.0, max_points=100)
    f.step(T0, 1, unique=4, speaking=[])
    f.step(T0 + 30, 1, unique=6, speaking=[])
    f.step(T0 + 61, 1, unique=9, speaking=[])
    f.step(T0 + 62, 1, unique=8, speaking=[])  # an estimate that wobbles down adds nothing
    assert f.minutes == [[T0, 6], [T0 + 60, 3]]


def test_the_timeline_stays_bounded_and_keeps_the_peaks() -> None:
    f = Figures(sample_s=1.0, max_points=10)
    for i in range(1000):
        f.step(T0 + i, 500 if i == 777 else i % 7, unique=0, speaking=[])
    assert len(f.timeline) <= 10
    assert max(n for _, n in f.timeline) == 500
    assert f.sample_s > 64
    assert [t for t, _ in f.timeline] == sorted(t for t, _ in f.timeline)


def test_json_round_trip() -> None:
    f = Figures(sample_s=2.0, max_points=10)
    f.step(T0, 3, unique=3, speaking=["bo"])
    f.add_reactions({"👏": 2}, up_to=int(T0))
    assert Figures.from_json(f.to_json()) == f


def test_people_are_kept_apart_from_joins_and_never_go_down() -> None:
    f = Figures(sample_s=2.0, max_points=10)
    f.step(T0, 1, unique=3, speaking=[], people=1)  # one person joined three times
    f.step(T0 + 1, 2, unique=5, speaking=[], people=3)
    f.step(T0 + 2, 2, unique=5, speaking=[], people=2)  # an estimate that wobbles down
    assert (f.unique, f.people) == (5, 3)
    assert sum(n for _, n in f.minutes) == 5  # joins per minute still count joins
    old = {k: v for k, v in f.to_json().items() if k != "people"}  # kept before people
    assert Figures.from_json(old).people == 0
