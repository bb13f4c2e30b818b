"""Nobody can bomb a mailbox through us: limits per address, per signup IP, per account."""

from __future__ import annotations

import datetime as dt

from flexmail import clock


def test_per_address_limit_holds_across_lists_and_accounts(client, account, create_account, create_list,
                                                            subscribe, worker, maildir):
    """Three confirmation mails a day reach one address, however many lists or accounts ask."""
    other = create_account("Globex")
    lists = [create_list(), create_list(name="Two"), create_list(acct=other)]
    codes = [subscribe(lst["id"], email="victim@example.com", acct=acct, ip=f"192.0.2.{i}").status_code
             for i, (lst, acct) in enumerate([(lists[0], account), (lists[1], account), (lists[2], other),
                                             (lists[0], account)])]
    assert codes == [202, 202, 202, 429]
    worker.drain()
    assert len(maildir()) == 3


def test_per_address_limit_lifts_after_a_day(client, create_list, subscribe):
    """The window slides: 24 hours after the first mail, one more is allowed."""
    lst = create_list()
    for _ in range(3):
        assert subscribe(lst["id"]).status_code == 202
    assert subscribe(lst["id"]).status_code == 429
    clock.freeze(clock.now() + dt.timedelta(hours=24, seconds=1))
    assert subscribe(lst["id"]).status_code == 202


def test_per_signup_ip_limit(app_with_list):
    """One signup IP can trigger only CONFIRM_PER_IP_PER_HOUR confirmation mails an hour."""
    _, client, list_id, headers = app_with_list(CONFIRM_PER_IP_PER_HOUR=2)

    def sub(email, ip):
        return client.post(f"/api/v1/lists/{list_id}/subscriptions", json={"email": email, "ip": ip},
                           headers=headers)

    assert [sub(f"u{i}@example.com", "198.51.100.5").status_code for i in range(3)] == [202, 202, 429]
    assert sub("other@example.com", "198.51.100.6").status_code == 202


def test_per_account_limit(app_with_list):
    """An account can trigger only CONFIRM_PER_ACCOUNT_PER_HOUR confirmation mails an hour."""
    _, client, list_id, headers = app_with_list(CONFIRM_PER_ACCOUNT_PER_HOUR=2)
    codes = [client.post(f"/api/v1/lists/{list_id}/subscriptions",
                         json={"email": f"u{i}@example.com", "ip": f"192.0.2.{i}"}, headers=headers).status_code
             for i in range(3)]
    assert codes == [202, 202, 429]
    body = client.post(f"/api/v1/lists/{list_id}/subscriptions", json={"email": "z@example.com"},
                       headers=headers)
    assert body.json["error"]["code"] == "rate_limited" and "account" in body.json["error"]["message"]


def test_rate_limited_signup_changes_nothing(client, account, create_list, subscribe):
    """A refused signup records no event and queues no mail."""
    lst = create_list()
    for _ in range(3):
        subscribe(lst["id"])
    sub_id = subscribe(lst["id"]).status_code == 429 and client.get(
        f"/api/v1/lists/{lst['id']}/subscriptions", headers=account.headers).json["items"][0]["id"]
    events = client.get(f"/api/v1/subscriptions/{sub_id}", headers=account.headers).json["events"]
    assert [e["type"] for e in events].count("subscribe_requested") == 3
