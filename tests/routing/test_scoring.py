"""The priority score: what moves a conversation up, with the reasons shown."""
from apps.routing.scoring import PriorityInputs, bucket_for, priority_score, urgency_terms


def test_calm_question_is_normal():
    p = priority_score(PriorityInputs(sentiment=0.0, is_public=False))
    assert p.score == 30 and p.bucket_name == "normal"
    assert p.reasons == ["30 base"]


def test_angry_public_refund_threat_from_big_account_is_urgent_with_reasons():
    text = "@acme worst service ever, I want a refund or I'm calling my lawyer"
    p = priority_score(PriorityInputs(sentiment=-0.85, urgency=urgency_terms(text), followers=120_000,
                                      is_public=True))
    assert p.bucket_name == "urgent"
    assert any("negative sentiment" in r for r in p.reasons)
    assert any('legal term "lawyer"' in r for r in p.reasons)
    assert any('money term "refund"' in r for r in p.reasons)
    assert any("120,000 followers" in r for r in p.reasons)
    assert any("public post" in r for r in p.reasons)


def test_praise_sorts_low():
    p = priority_score(PriorityInputs(sentiment=0.9, is_public=False))
    assert p.bucket_name == "low"


def test_waiting_ages_upward_and_is_capped():
    fresh = priority_score(PriorityInputs(sentiment=-0.3))
    hour = priority_score(PriorityInputs(sentiment=-0.3, waiting_minutes=60))
    day = priority_score(PriorityInputs(sentiment=-0.3, waiting_minutes=24 * 60))
    assert fresh.score < hour.score < day.score
    assert day.score - fresh.score == 25
    assert "waiting 60 min" in hour.reasons[-1]


def test_vip_and_reach_add_up_but_score_stays_within_0_100():
    p = priority_score(PriorityInputs(sentiment=-1.0, vip=True, followers=5_000_000, verified=True,
                                      urgency={"legal": "lawyer", "security": "hacked", "outage": "down"},
                                      waiting_minutes=10_000, rule_boost=50))
    assert p.score == 100
    low = priority_score(PriorityInputs(sentiment=0.9, is_public=False, rule_boost=-50))
    assert low.score == 0 and low.bucket_name == "low"


def test_urgency_counts_each_kind_once_and_caps():
    terms = urgency_terms("REFUND now. refund!! The app is broken, error again. Cancel my plan. Lawyer. Hacked.")
    assert set(terms) == {"money", "outage", "churn", "legal", "security"}
    p = priority_score(PriorityInputs(urgency=terms, is_public=False))
    urgency_points = sum(int(r.split()[0]) for r in p.reasons if " term " in r)
    assert urgency_points == 35


def test_urgency_terms_match_words_not_substrings():
    assert urgency_terms("I love my new refundable ticket") == {}
    assert urgency_terms("your site is down again") == {"outage": "is down"}


def test_rule_bucket_override_moves_score_into_that_bucket():
    p = priority_score(PriorityInputs(sentiment=0.0, bucket_override=0, rule_name="VIP press"))
    assert p.bucket == 0 and p.score >= 75
    assert 'bucket urgent set by rule "VIP press"' in p.reasons[-1]
    down = priority_score(PriorityInputs(sentiment=-0.9, urgency={"legal": "lawyer"}, bucket_override=3,
                                         rule_name="bots"))
    assert down.bucket == 3 and down.score < 30


def test_buckets():
    assert [bucket_for(s) for s in (100, 75, 74, 55, 54, 30, 29, 0)] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_inputs_round_trip_json():
    inputs = PriorityInputs(sentiment=-0.5, urgency={"money": "refund"}, followers=10, vip=True)
    assert PriorityInputs.from_json(inputs.to_json()) == inputs
    assert PriorityInputs.from_json({"unknown": 1, "followers": 3}).followers == 3
