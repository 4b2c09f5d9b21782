"""Sends with segment-analytics-python and rudder-sdk-python exactly as an app would, then
checks through the cxm API that every event arrived and the identities were joined."""
import json
import sys
import urllib.parse
import urllib.request

base, tenant_file = sys.argv[1], sys.argv[2]
tenant = json.load(open(tenant_file))
errors = []


def on_error(error, items):
    errors.append((str(error), len(items)))


import segment.analytics as segment  # noqa: E402

seg = segment.Client(tenant["write_key"], host=base, on_error=on_error, gzip=True, sync_mode=False)
seg.identify("seg-user-1", {"email": "Seg.User@Example.com", "name": "Seg User"}, anonymous_id="seg-anon-1")
seg.track("seg-user-1", "Chat Started", {"intent": "billing"})
seg.page("seg-user-1", "Docs", "Getting Started", {"url": "https://example.com/docs"})
seg.group("seg-user-1", "acct-seg", {"name": "Seg Inc", "arr": 12000})
seg.track(anonymous_id="seg-anon-2", event="Pricing Viewed", context={"traits": {"email": "seg.user@example.com"}})
seg.alias("seg-anon-3", "seg-user-1")
seg.flush()
seg.join()

import rudderstack.analytics as rudder  # noqa: E402

rudder.write_key = tenant["write_key"]
rudder.dataPlaneUrl = base
rudder.on_error = on_error
rudder.identify("rs-user-1", {"email": "rs@example.com", "phone": "+1 (415) 555-0100"}, anonymous_id="rs-anon-1")
rudder.track("rs-user-1", "Call Completed", {"duration": 300})
rudder.screen("rs-user-1", "Home", properties={"step": 1})
rudder.track("rs-user-1", "Payment Failed", {"amount": 49})
rudder.flush()

assert not errors, f"sdk errors: {errors}"


def get(path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + tenant["secret_key"]})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


seg_profile = get("/api/v1/customers?identifier=email:seg.user@example.com")
ids = {(i["type"], i["value"]) for i in seg_profile["identifiers"]}
for want in [("user_id", "seg-user-1"), ("anonymous_id", "seg-anon-1"), ("anonymous_id", "seg-anon-2"), ("anonymous_id", "seg-anon-3")]:
    assert want in ids, f"{want} not joined: {ids}"
assert seg_profile["accounts"] == ["acct-seg"], seg_profile
ctx = get(f"/api/v1/customers/{seg_profile['id']}/context")
assert len(ctx["timeline"]) == 6, [e["name"] for e in ctx["timeline"]]

rs_profile = get("/api/v1/customers?identifier=" + urllib.parse.quote("phone:+14155550100"))
assert ("user_id", "rs-user-1") in {(i["type"], i["value"]) for i in rs_profile["identifiers"]}
ctx = get(f"/api/v1/customers/{rs_profile['id']}/context")
names = [e["name"] for e in ctx["timeline"]]
assert names.count("Call Completed") == 1 and names.count("Payment Failed") == 1, names
assert "Billing" in ctx["summary"], ctx["summary"]

overview = get("/api/v1/overview")
assert overview["total_events"] == 10, overview
assert overview["quarantined"] == 0, get("/api/v1/quarantine")
print("python sdks: 10 events, identities joined:", ctx["summary"])
