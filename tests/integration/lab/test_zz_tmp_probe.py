import time
import pytest
from labhelpers import unique
from test_balancer import SERVE, answers

@pytest.mark.parametrize("n", [1, 2, 3])
def test_probe(lab, cloud, n):
    a = cloud.run_instance(unique("pa")); b = cloud.run_instance(unique("pb"), "us-west-2b")
    lab.materialise()
    for i in (a, b):
        ip = i["PrivateIpAddress"]
        lab.wait_until(lambda: lab.ssh(ip, "true").returncode == 0, 60, "ssh")
        lab.ssh_ok(ip, SERVE)
    lab.ssh_ok(b["PrivateIpAddress"], "sudo rm /srv/www/up")
    _, tg = cloud.create_alb(unique("palb"), health_check_path="/up", interval=5, healthy=2, unhealthy=2)
    lab.elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": a["InstanceId"]}])
    lab.materialise()
    time.sleep(1)
    lab.elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": b["InstanceId"]}])
    lab.materialise()
    t0 = time.monotonic()
    seen = []
    while time.monotonic() - t0 < 6:
        seen.append((round(time.monotonic() - t0, 1), answers(lab, 1)[0][6:]))
    print(sorted({s[1] for s in seen}), [s for s in seen if "pb" in s[1]][:3], len(seen))
    print(open("lab/.state/balancer/haproxy.cfg").read().split("backend targets")[1])
