"""What a site learns from its moderators: a domain, e-mail domain or text they filed as spam
is spam the next time; hosts its readers cite stop counting towards the link hold."""

from __future__ import annotations

from service.db import Comment, CommentStatus, DecidedBy, Label
from service.reputation import Reputation, fingerprint

GENUINE = "I think the seven-month lag estimate is too optimistic; the Qwen benchmarks disagree."


def _labelled(db, label: Label, n: int = 1, **fields: str) -> None:
    for i in range(n):
        db.add(Comment(post="p", author_name="Someone", status=CommentStatus(
            "spam" if label == Label.SPAM else "published"), label=label,
            **{"content": f"Earlier comment number {i} about the article.", **fields}))
    db.commit()


def test_a_site_a_moderator_filed_as_spam_is_spam_the_next_time(db, post_comment,
                                                                   run_worker) -> None:
    _labelled(db, Label.SPAM, author_url="https://cheap-vps-hosting.example/")
    spam_id = post_comment(content=GENUINE, author_url="https://www.cheap-vps-hosting.example"
                           ).get_json()["id"]
    other_id = post_comment(content=GENUINE + " Indeed.", author_url="https://jess.codes"
                            ).get_json()["id"]
    run_worker()
    spam, other = db.get(Comment, spam_id), db.get(Comment, other_id)
    assert spam.status == CommentStatus.SPAM and spam.decided_by == DecidedBy.RULE
    assert spam.reasons[0] == ("author website cheap-vps-hosting.example filed as spam by a "
                               "moderator before")
    assert other.status == CommentStatus.PUBLISHED


def test_a_site_also_approved_before_is_not_condemned(db, post_comment, run_worker) -> None:
    _labelled(db, Label.SPAM, author_url="https://shared-host.example")
    _labelled(db, Label.HAM, author_url="https://shared-host.example")
    comment_id = post_comment(content=GENUINE, author_url="https://shared-host.example"
                              ).get_json()["id"]
    run_worker()
    assert db.get(Comment, comment_id).status == CommentStatus.PUBLISHED


def test_a_label_given_after_the_worker_started_counts_for_the_next_comment(
        db, post_comment, run_worker) -> None:
    first = post_comment(content="Great read, see you at wholesale-jerseys.example for more",
                         ).get_json()["id"]
    run_worker()
    row = db.get(Comment, first)
    row.label, row.status = Label.SPAM, CommentStatus.SPAM  # what a moderator's decision sets
    db.commit()
    again = post_comment(content="Nice post. More at wholesale-jerseys.example",
                         ).get_json()["id"]
    run_worker()
    again_row = db.get(Comment, again)
    assert again_row.status == CommentStatus.SPAM
    assert "linked site wholesale-jerseys.example filed as spam" in again_row.reasons[0]


def test_hosts_readers_cite_do_not_count_towards_the_link_hold(db, post_comment,
                                                               run_worker) -> None:
    """Two links hold a comment for a moderator (the default rule), unless they point at a
    host this site's readers cited in approved comments (the model still scores the links)."""
    for i in range(2):
        _labelled(db, Label.HAM, content=f"See https://papers.uni-example.org/{i} on this.")
    text = ("The lag is measured from release dates in the report itself ({0}/ai-index, "
            "chapter 2), and the benchmark table at {1}/ai-index/tables shows the narrower gap "
            "on coding tasks.")
    cited = post_comment(content=text.format("https://papers.uni-example.org",
                                             "https://papers.uni-example.org")).get_json()["id"]
    unknown = post_comment(content=text.format("https://blog-a.example",
                                               "https://blog-b.example")).get_json()["id"]
    run_worker()
    cited_row, unknown_row = db.get(Comment, cited), db.get(Comment, unknown)
    assert any(r.startswith("2 links (hold at 2)") for r in unknown_row.reasons)
    assert unknown_row.status == CommentStatus.HELD and unknown_row.decided_by == DecidedBy.RULE
    assert not any("hold at" in r for r in cited_row.reasons)
    assert cited_row.decided_by == DecidedBy.MODEL


def test_fingerprints_and_reference_hosts() -> None:
    assert fingerprint("Earn  $500 a DAY") == fingerprint("earn $500 a day")
    assert fingerprint("Ea\u200brn $500 a day") == fingerprint("Earn $500 a day")
    reputation = Reputation.from_labels([
        ("spam", "Cheap followers, proof at https://arxiv.org/abs/1234 and more", None, None),
        ("spam", "Contact us for SEO packages today please", None, "sales@seo-agency.example"),
    ])
    # One spammer citing arxiv.org does not make arxiv.org spam; its e-mail domain does.
    assert reputation.hits("See https://arxiv.org/abs/9999 for the result", None, None) == []
    reasons = [h.reason for h in reputation.hits("Hello there", None, "bob@seo-agency.example")]
    assert reasons == ["e-mail domain seo-agency.example filed as spam by a moderator before"]
    # Free-mail domains say nothing.
    free = Reputation.from_labels([("spam", "Buy now and save a lot", None, "x@gmail.com")])
    assert free.hits("Hello there", None, "y@gmail.com") == []


TEMPLATE = ("I lost $87,000 to a fake crypto investment platform and thought it was gone forever. "
            "Then a friend referred me to Mr. Kevin Adams, a recovery expert, and he got all my "
            "money back in 3 days.")
SPUN = ("I lost $54,000 to a fake bitcoin investment platform and thought it was gone forever. "
        "Then a friend referred me to Mr. Kevin Adams, a recovery expert, and he got all my "
        "funds back in 2 days.")


def test_a_new_member_of_a_campaign_moderators_filed_as_spam_is_spam(db, post_comment,
                                                                     run_worker) -> None:
    _labelled(db, Label.SPAM, content=TEMPLATE)
    _labelled(db, Label.HAM, content=GENUINE + " The compute numbers look low to me too.")
    spun = post_comment(content=SPUN, author_name="Margaret", post="interest-rates"
                        ).get_json()["id"]
    genuine = post_comment(content=GENUINE + " The compute numbers look low to me too, yes."
                           ).get_json()["id"]
    run_worker()
    spun_row, genuine_row = db.get(Comment, spun), db.get(Comment, genuine)
    assert spun_row.status == CommentStatus.SPAM and spun_row.decided_by == DecidedBy.RULE
    assert spun_row.reasons[0].startswith("near-duplicate of a comment filed as spam")
    assert not any("near-duplicate" in r for r in genuine_row.reasons)


def test_near_duplicates_need_a_spam_neighbour_and_no_approved_one() -> None:
    both = Reputation.from_labels([("spam", TEMPLATE, None, None), ("ham", TEMPLATE,
                                                                     None, None)])
    assert both.hits(SPUN, None, None) == []  # as near to an approved text: not condemned
    only_spam = Reputation.from_labels([("spam", TEMPLATE, None, None)])
    assert [h.reason for h in only_spam.hits(SPUN, None, None)] == [
        "near-duplicate of a comment filed as spam by a moderator (a campaign)"]
    # Exactly the same text is named as such, once.
    assert [h.reason for h in only_spam.hits(TEMPLATE, None, None)] == [
        "the same text filed as spam by a moderator before"]
    assert only_spam.hits(GENUINE + " I agree with the part on export controls.", None,
                          None) == []


def test_the_worker_reads_only_what_changed_unless_an_import_added_old_labels(db) -> None:
    from datetime import timedelta

    from service.db.types import utcnow
    from service.reputation import label_stamp

    now = utcnow()
    db.add(Comment(post="p", author_name="A", content="x", status=CommentStatus.SPAM,
                   label=Label.SPAM, author_url="https://first.example", decided_at=now))
    db.commit()
    reputation = Reputation.load(db)
    assert reputation.hits("hi", "https://first.example", None)
    decided = Comment(post="p", author_name="B", content="y", status=CommentStatus.SPAM,
                      label=Label.SPAM, author_url="https://second.example",
                      decided_at=now + timedelta(seconds=1))
    db.add(decided)
    db.commit()
    assert reputation.update(db, label_stamp(db)[0])  # the new decision, read alone
    assert reputation.hits("hi", "https://second.example", None)
    decided.label, decided.status = Label.HAM, CommentStatus.PUBLISHED  # a moderator undoes it
    decided.decided_at = now + timedelta(seconds=2)
    db.commit()
    assert reputation.update(db, label_stamp(db)[0])
    assert reputation.hits("hi", "https://second.example", None) == []  # counted once, as ham
    db.add(Comment(post="p", author_name="C", content="z", status=CommentStatus.SPAM,
                   label=Label.SPAM, author_url="https://imported.example",
                   decided_at=now - timedelta(days=400)))  # an import keeps its old date
    db.commit()
    assert not reputation.update(db, label_stamp(db)[0])  # the worker then reloads it all
    assert Reputation.load(db).hits("hi", "https://imported.example", None)


def test_rescoring_held_comments_applies_a_decision_to_its_campaign(db, post_comment,
                                                                    run_worker) -> None:
    """A moderator files one comment of a campaign as spam; `flask model rescore --status
    held` (jobs.rescore) then files the held members of its group as spam, with the reason."""
    from worker import jobs

    first = post_comment(content=TEMPLATE, author_name="Margaret").get_json()["id"]
    second = post_comment(content=SPUN, author_name="Henry", post="interest-rates"
                          ).get_json()["id"]
    genuine = post_comment(content=GENUINE).get_json()["id"]
    run_worker()
    for comment_id in (first, second, genuine):  # whatever the model said: all wait here
        db.get(Comment, comment_id).status = CommentStatus.HELD
    row = db.get(Comment, first)
    row.status, row.label = CommentStatus.SPAM, Label.SPAM  # the moderator's decision
    db.commit()
    moved = jobs.rescore(jobs.get_scorer(), ("held",))
    db.expire_all()
    assert moved["moved"] == {"spam": 1, "published": 1}  # the campaign's member, the genuine one
    member = db.get(Comment, second)
    assert member.status == CommentStatus.SPAM
    assert member.reasons[0].startswith("near-duplicate of a comment filed as spam")
    assert db.get(Comment, genuine).status == CommentStatus.PUBLISHED


def test_a_labelled_comments_stored_simhash_is_read_not_computed_again(db) -> None:
    from service.campaigns import simhash

    spun = ("Great insight on the markets, I recovered my lost funds through a recovery agent "
            "called Marcus, contact him today")
    # A label whose stored SimHash is another text's: what is read is what the worker stored.
    db.add(Comment(post="p", author_name="Someone", status=CommentStatus.SPAM,
                   label=Label.SPAM, content="Short.", simhash=simhash(spun)))
    db.commit()
    reputation = Reputation.load(db)
    hits = reputation.hits(spun.replace("Marcus", "Victor"), None, None)
    assert [hit.reason for hit in hits] == [
        "near-duplicate of a comment filed as spam by a moderator (a campaign)"]
