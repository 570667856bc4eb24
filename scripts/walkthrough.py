"""Walks the release binaries through real flows under cargo-lambda's Lambda
Runtime API, with moto's server as AWS: what a user would see after
`sam deploy`, without an AWS account.

1. pre-sign-up: every sample of events/pre-sign-up (each with the
   configuration its .expected.json names), invoked with `cargo lambda invoke`;
   the outcome must be the expected one.
2. post-confirmation: users created in moto, one per preference; the MFA
   settings AdminGetUser shows afterwards; the wall time of an invocation, and
   of one whose endpoint refuses connections.
3. custom-sms-sender: codes encrypted as Cognito does (Python
   aws-encryption-sdk, KMS key in moto, context userpool-id); the SMS in
   moto's SNS record; a code for another pool refused.
4. custom-email-sender: a From identity verified in moto's SES (v2
   CreateEmailIdentity), the limits table on as the template deploys it,
   codes encrypted as Cognito does (the same helper as the SMS sender's); a
   sign-up code in English and in Japanese in moto's SES record (subject,
   HTML part with the code); the same event again sent once; a code for
   another pool refused.
5. pre-authentication: an admin-created user given SMS MFA, a TOTP user
   left alone, an unknown user answered alike, Cognito unreachable denied.
6. custom auth: SRP -> password -> code (SMS on moto) -> tokens, a wrong code
   then the right one, the attempt limit, an unknown user, a NOMFA user, a
   user without phone in an OPTIONAL and in an ON pool.

Run by scripts/walkthrough (it builds the binaries and starts moto). Exits
non-zero when anything differs from what is expected.
"""

import json
import os
import pathlib
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(os.environ.get("BIN_DIR", ROOT / "target" / "release"))
MOTO = os.environ["MOTO_ENDPOINT"]
CARGO_LAMBDA = str(ROOT / ".venv" / "bin" / "cargo-lambda")
REGION = "us-east-1"
SECRET = "walkthrough-only-challenge-secret-0123456789"
failures = []


def check(ok, what):
    print(("  ok   " if ok else "  FAIL ") + what)
    if not ok:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mask(phone):
    return phone[:2] + "*" * (len(phone) - 6) + phone[-4:] if phone else ""


class RuntimeApi:
    """`cargo lambda watch --only-lambda-apis`: the Runtime API emulator."""

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [CARGO_LAMBDA, "lambda", "watch", "--only-lambda-apis", "-P", str(self.port),
             "-A", "127.0.0.1"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("cargo lambda watch did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Function:
    """One release binary serving the Runtime API under its own name."""

    def __init__(self, api, binary, name, env):
        self.api, self.name = api, name
        full = {
            "PATH": os.environ["PATH"],
            "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{api.port}/.rt/{name}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": MOTO,
        }
        full.update(env)
        self.log = open(ROOT / "target" / f"walkthrough-{name}.log", "w")
        self.proc = subprocess.Popen([str(BIN / binary)], env=full, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def invoke(self, event):
        """POST to the emulator's invoke API; (ok, body, seconds)."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.api.port}/2015-03-31/functions/{self.name}/invocations",
            data=json.dumps(event).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = json.loads(r.read() or b"null")
                unhandled = r.headers.get("X-Amz-Function-Error")
        except urllib.error.HTTPError as e:   # the emulator answers a function error with 500
            body = json.loads(e.read() or b"null")
            unhandled = "Unhandled"
        took = time.perf_counter() - start
        ok = not unhandled and not (isinstance(body, dict) and "errorType" in body)
        return ok, body, took

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


def aws(service):
    import boto3
    return boto3.client(service, endpoint_url=MOTO, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def sent_sms():
    data = json.load(urllib.request.urlopen(f"{MOTO}/moto-api/data.json"))
    out = []

    def walk(v):
        if isinstance(v, dict) and "phone_number" in v and "message" in v:
            out.append((v["phone_number"], v["message"]))
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(data.get("sns", {}).get("SMS", []))
    return out


def mask_email(address):
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def sent_email():
    """moto's SES record: (from, to addresses, subject, body), oldest first.
    moto 5.2 keeps the HTML part of a two-part email as the body."""
    data = json.load(urllib.request.urlopen(f"{MOTO}/moto-api/data.json"))
    return [(m.get("source"), (m.get("destinations") or {}).get("ToAddresses", []),
             m.get("subject"), m.get("body") or "")
            for m in data.get("ses", {}).get("Message", [])]


def pre_sign_up(api):
    print("\n== pre-sign-up: every sample, `cargo lambda invoke`")
    samples = sorted((ROOT / "events" / "pre-sign-up").glob("*.json"))
    samples = [s for s in samples if not s.name.endswith(".expected.json")]
    # `cargo lambda invoke` takes only the workspace's binary names: one
    # pre-sign-up process at a time, started with each sample's configuration.
    groups = {}
    for sample in samples:
        expected = json.loads(sample.with_name(sample.stem + ".expected.json").read_text())
        key = json.dumps(expected.get("env", {}), sort_keys=True)
        groups.setdefault(key, []).append((sample, expected))
    for key, members in groups.items():
        f = Function(api, "pre-sign-up", "pre-sign-up", json.loads(key))
        for sample, expected in members:
            out = subprocess.run(
                [CARGO_LAMBDA, "lambda", "invoke", "pre-sign-up", "-P", str(api.port),
                 "-A", "127.0.0.1", "--data-file", str(sample), "--output-format", "json"],
                cwd=ROOT, capture_output=True, text=True, timeout=60,
            )
            accepted = out.returncode == 0 and '"errorType"' not in out.stdout
            outcome = "accepted" if accepted else "refused"
            if accepted:
                resp = json.loads(out.stdout)["response"]
                detail = "autoConfirmUser={autoConfirmUser} autoVerifyEmail={autoVerifyEmail} " \
                         "autoVerifyPhone={autoVerifyPhone}".format(**resp)
            else:
                # cargo-lambda prints "Error: <errorType>" then "× <errorMessage>".
                text = out.stdout + out.stderr
                m = re.search(r"Error: (\w+)\s+×\s+(.*?)\n\s*\n", text, re.S)
                detail = (f"{m.group(1)}: " + " ".join(m.group(2).replace("│", " ").split())
                          if m else text.strip()[-200:])
            check(outcome == expected["outcome"], f"{sample.name}: {outcome} ({detail})")
        f.stop()


def post_confirmation(api):
    print("\n== post-confirmation on moto (AdminSetUserMFAPreference, then AdminGetUser)")
    idp = aws("cognito-idp")
    pool = idp.create_user_pool(
        PoolName="walkthrough", MfaConfiguration="OPTIONAL",
        Schema=[{"Name": "mfa_preference", "AttributeDataType": "String", "Mutable": True}],
    )["UserPool"]["Id"]
    idp.set_user_pool_mfa_config(UserPoolId=pool, MfaConfiguration="OPTIONAL",
                                 SmsMfaConfiguration={"SmsConfiguration": {"SnsCallerArn": "arn:aws:iam::123456789012:role/sms"}},
                                 SoftwareTokenMfaConfiguration={"Enabled": True})
    users = {
        "sms-user": ("SMS", "+14155550101", (["SMS_MFA"], "SMS_MFA")),
        "totp-user": ("TOTP", "+14155550102", (["SMS_MFA"], None)),
        "totp-no-phone": ("TOTP", None, ([], None)),
        "nomfa-user": ("NOMFA", "+14155550103", ([], None)),
        "default-user": (None, "+14155550104", (["SMS_MFA"], "SMS_MFA")),
    }
    fn = Function(api, "post-confirmation", "post-confirmation", {})
    times = []
    for name, (pref, phone, (want_enabled, want_preferred)) in users.items():
        attrs = [{"Name": "email", "Value": f"{name}@example.com"}]
        if phone:
            attrs.append({"Name": "phone_number", "Value": phone})
        if pref:
            attrs.append({"Name": "custom:mfa_preference", "Value": pref})
        idp.admin_create_user(UserPoolId=pool, Username=name, UserAttributes=attrs,
                              MessageAction="SUPPRESS")
        event_attrs = {a["Name"]: a["Value"] for a in attrs}
        event_attrs["cognito:user_status"] = "CONFIRMED"
        event = {
            "version": "1", "region": REGION, "userPoolId": pool, "userName": name,
            "callerContext": {"awsSdkVersion": "aws-sdk-js-3", "clientId": "walkthrough"},
            "triggerSource": "PostConfirmation_ConfirmSignUp",
            "request": {"userAttributes": event_attrs}, "response": {},
        }
        ok, _, took = fn.invoke(event)
        ok2, _, took2 = fn.invoke(event)   # running twice is harmless
        times += [took, took2]
        u = idp.admin_get_user(UserPoolId=pool, Username=name)
        enabled = sorted(u.get("UserMFASettingList", []))
        preferred = u.get("PreferredMfaSetting") or None
        check(ok and ok2 and enabled == want_enabled and preferred == want_preferred,
              f"{name} (preference {pref or 'default'}, phone {mask(phone) or 'none'}): "
              f"enabled={enabled} preferred={preferred}")
    event["triggerSource"] = "PostConfirmation_ConfirmForgotPassword"
    event["userName"] = "totp-no-phone"
    ok, _, _ = fn.invoke(event)
    u = idp.admin_get_user(UserPoolId=pool, Username="totp-no-phone")
    check(ok and not u.get("UserMFASettingList"), "ConfirmForgotPassword changes nothing")
    missing = dict(event, userName="nobody", triggerSource="PostConfirmation_ConfirmSignUp")
    missing["request"] = {"userAttributes": {"phone_number": "+14155550109"}}
    ok, body, _ = fn.invoke(missing)
    check(not ok and body.get("errorType") == "UserNotFound",
          f"a user missing from the pool is the Lambda error: {body.get('errorType')}")
    fn.stop()
    warm = sorted(times)
    print(f"  wall time of one invocation on moto (emulator round trip included), n={len(warm)}: "
          f"median {statistics.median(warm) * 1000:.1f} ms, max {warm[-1] * 1000:.1f} ms")

    # The emulator serves only the workspace's binary names: each variant
    # runs under the same name, one after the other.
    dead = Function(api, "post-confirmation", "post-confirmation",
                    {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"})
    event = dict(event, userName="sms-user", triggerSource="PostConfirmation_ConfirmSignUp")
    event["request"] = {"userAttributes": {"phone_number": "+14155550101",
                                           "custom:mfa_preference": "SMS"}}
    ok, body, took = dead.invoke(event)
    check(not ok and body.get("errorType") == "CognitoUnreachable",
          f"endpoint refusing connections: {body.get('errorType')} after {took * 1000:.0f} ms")
    dead.stop()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    hang = Function(api, "post-confirmation", "post-confirmation",
                    {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{silent.getsockname()[1]}"})
    ok, body, took = hang.invoke(event)
    check(not ok and took < 4.5,
          f"endpoint that never answers: {body.get('errorType')} after {took * 1000:.0f} ms (< 4.5 s)")
    hang.stop()
    silent.close()


def pre_authentication(api):
    print("\n== pre-authentication (the factor guard) on moto: AdminGetUser, AdminSetUserMFAPreference")
    idp = aws("cognito-idp")
    pool = idp.create_user_pool(
        PoolName="walkthrough-guard", MfaConfiguration="OPTIONAL",
        Schema=[{"Name": "mfa_preference", "AttributeDataType": "String", "Mutable": True}],
    )["UserPool"]["Id"]
    app = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="walkthrough",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    fn = Function(api, "pre-authentication", "pre-authentication", {})

    def event(name, attrs, not_found=False):
        return {
            "version": "1", "region": REGION, "userPoolId": pool, "userName": name,
            "callerContext": {"awsSdkVersion": "aws-sdk-js-3", "clientId": app},
            "triggerSource": "PreAuthentication_Authentication",
            "request": {"userAttributes": attrs, "validationData": None, "userNotFound": not_found},
            "response": {},
        }

    def mfa(name):
        u = idp.admin_get_user(UserPoolId=pool, Username=name)
        return sorted(u.get("UserMFASettingList", [])), u.get("PreferredMfaSetting") or None

    # An admin-created user (PostConfirmation never fires for them): no factor.
    idp.admin_create_user(UserPoolId=pool, Username="admin-made",
                          UserAttributes=[{"Name": "phone_number", "Value": "+14155550131"}],
                          MessageAction="SUPPRESS")
    before = mfa("admin-made")
    ok, _, took = fn.invoke(event("admin-made", {"phone_number": "+14155550131",
                                                  "cognito:user_status": "FORCE_CHANGE_PASSWORD"}))
    after = mfa("admin-made")
    check(ok and before == ([], None) and after == (["SMS_MFA"], "SMS_MFA"),
          f"admin-created user, phone {mask('+14155550131')}, no factor: {before} -> {after} "
          f"({took * 1000:.0f} ms)")

    # A user with TOTP enabled is read and left alone.
    idp.admin_create_user(UserPoolId=pool, Username="totp-user",
                          UserAttributes=[{"Name": "phone_number", "Value": "+14155550132"}],
                          MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username="totp-user", Password="Correct-Horse-9",
                                Permanent=True)
    tokens = idp.admin_initiate_auth(
        UserPoolId=pool, ClientId=app, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "totp-user", "PASSWORD": "Correct-Horse-9"},
    )["AuthenticationResult"]
    idp.associate_software_token(AccessToken=tokens["AccessToken"])
    idp.verify_software_token(AccessToken=tokens["AccessToken"], UserCode="123456")
    idp.admin_set_user_mfa_preference(UserPoolId=pool, Username="totp-user",
                                      SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})
    real, unknown = [], []
    for _ in range(20):
        ok1, body1, t1 = fn.invoke(event("totp-user", {"phone_number": "+14155550132"}))
        ok2, body2, t2 = fn.invoke(event("no-such-user", {}, not_found=True))
        real.append(t1)
        unknown.append(t2)
    check(ok1 and mfa("totp-user") == (["SOFTWARE_TOKEN_MFA"], "SOFTWARE_TOKEN_MFA"),
          "a user with TOTP enabled is left alone")
    check(ok2 and sorted(body1) == sorted(body2),
          f"an unknown user gets the same answer: median {statistics.median(unknown) * 1000:.1f} ms "
          f"vs {statistics.median(real) * 1000:.1f} ms for a real user (n=20 each)")

    fn.stop()
    dead = Function(api, "pre-authentication", "pre-authentication",
                    {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"})
    ok, body, took = dead.invoke(event("admin-made", {"phone_number": "+14155550131"}))
    check(not ok and body.get("errorType") == "SignInUnavailable" and took < 2.5,
          f"Cognito unreachable: denied ({body.get('errorType')}: {body.get('errorMessage')}) "
          f"after {took * 1000:.0f} ms")
    dead.stop()


def encrypt_like_cognito(key_arn, pool, plaintext):
    out = subprocess.run(
        [sys.executable, str(ROOT / "functions/custom-sms-sender/tests/encrypt_like_cognito.py"),
         key_arn, pool, plaintext],
        env=dict(os.environ, AWS_ENDPOINT_URL=MOTO, AWS_DEFAULT_REGION=REGION,
                 AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing"),
        capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def custom_sms_sender(api):
    print("\n== custom-sms-sender on moto (KMS Decrypt through the AWS Encryption SDK, SNS Publish)")
    key_arn = aws("kms").create_key()["KeyMetadata"]["Arn"]
    pool = "us-east-1_Walk01"
    fn = Function(api, "custom-sms-sender", "custom-sms-sender", {"KEY_ARN": key_arn})
    cases = [
        ("CustomSMSSender_SignUp", "en", "+14155550111", "483920", "Your verification code is 483920"),
        ("CustomSMSSender_Authentication", "ja", "+819012340001", "771204", "認証コードは 771204 です"),
        ("CustomSMSSender_AdminCreateUser", "en-US", "+14155550112", "Tmp&lt;9x&gt;Q",
         "Your username is walker and your temporary password is Tmp<9x>Q"),
        ("CustomSMSSender_ForgotPassword", "fr", "+14155550113", "100200", "100200"),
    ]
    times = []
    for source, locale, phone, secret, want in cases:
        event = {
            "version": "1", "triggerSource": source, "region": REGION, "userPoolId": pool,
            "userName": "walker",
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "c"},
            "request": {"type": "customSMSSenderRequestV1",
                        "code": encrypt_like_cognito(key_arn, pool, secret),
                        "clientMetadata": None,
                        "userAttributes": {"phone_number": phone, "locale": locale}},
        }
        ok, _, took = fn.invoke(event)
        times.append(took)
        got = [m for p, m in sent_sms() if p == phone]
        check(ok and len(got) == 1 and want in got[0],
              f"{source} ({locale}) to {mask(phone)}: {len(got)} SMS, text as expected: "
              f"{bool(got) and want in got[0]}")
    other = dict(event)
    other["request"] = dict(event["request"], code=encrypt_like_cognito(key_arn, "us-east-1_Other", "555555"),
                            userAttributes={"phone_number": "+14155550119", "locale": "en"})
    ok, body, _ = fn.invoke(other)
    check(not ok and body.get("errorType") == "WrongUserPool"
          and not [m for p, m in sent_sms() if p == "+14155550119"],
          f"a code encrypted for another pool: {body.get('errorType')}, nothing sent")
    garbage = dict(event)
    garbage["request"] = dict(event["request"], code="bm90IGFuIEVTREsgbWVzc2FnZQ==")
    ok, body, _ = fn.invoke(garbage)
    check(not ok and body.get("errorType") == "DecryptionFailed",
          f"not an ESDK message: {body.get('errorType')}")
    fn.stop()
    print(f"  warm invoke (decrypt + publish on moto, emulator round trip included), n={len(times)}: "
          f"median {statistics.median(times) * 1000:.1f} ms")


def custom_email_sender(api):
    print("\n== custom-email-sender on moto (KMS Decrypt through the AWS Encryption SDK, "
          "SES v2 SendEmail, the limits in DynamoDB)")
    key_arn = aws("kms").create_key()["KeyMetadata"]["Arn"]
    pool = "us-east-1_Walk03"
    sender = "no-reply@walkthrough.example.com"
    # The From identity must be verified in SES (moto verifies it at once).
    aws("sesv2").create_email_identity(EmailIdentity=sender)
    # The limits table as the template makes it (on-demand, key pk, TTL on
    # expires_at), with the template's default email limits.
    table = f"walkthrough-limits-{os.getpid()}"
    ddb = aws("dynamodb")
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "expires_at"})
    fn = Function(api, "custom-email-sender", "custom-email-sender", {
        "KEY_ARN": key_arn, "EMAIL_FROM": sender,
        "LIMIT_TABLE": table, "LIMIT_KEY_SECRET": "walkthrough-only-limit-key-0123456789abcdef",
        "EMAIL_LIMIT_PER_ADDRESS": "5/15m", "EMAIL_LIMIT_PER_USER": "10/1h",
        "EMAIL_LIMIT_PER_POOL": "300/1m",
    })

    def event(source, user, email, locale, code):
        return {
            "version": "1", "triggerSource": source, "region": REGION, "userPoolId": pool,
            "userName": user,
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "c"},
            "request": {"type": "customEmailSenderRequestV1", "code": code,
                        "clientMetadata": None,
                        "userAttributes": {"email": email, "email_verified": "false",
                                           "locale": locale}},
        }

    def to(address):
        return [m for m in sent_email() if address in m[1]]

    cases = [
        ("walker-en", "walker@example.com", "en-US", "483920", "Your verification code"),
        ("walker-ja", "hanako@example.jp", "ja-JP", "771204", "確認コード"),
    ]
    times = []
    for user, address, locale, code, subject in cases:
        ev = event("CustomEmailSender_SignUp", user, address, locale,
                   encrypt_like_cognito(key_arn, pool, code))
        ok, body, took = fn.invoke(ev)
        times.append(took)
        got = to(address)
        check(ok and (body or {}).get("response", {}).get("outcome") == "sent" and len(got) == 1
              and got[0][0] == sender and got[0][2] == subject and code in got[0][3],
              f"CustomEmailSender_SignUp ({locale}) to {mask_email(address)}: {len(got)} email in "
              f"moto's SES from {sender}, subject {got[0][2] if got else None!r}, code in the HTML "
              f"part: {bool(got) and code in got[0][3]}")
    # Lambda's retry of the last event: the limits table's record says it was sent.
    ok, body, _ = fn.invoke(ev)
    check(ok and (body or {}).get("response", {}).get("outcome") == "duplicate"
          and len(to(cases[-1][1])) == 1,
          f"the same event again: {(body or {}).get('response', {}).get('outcome')}, still one email")
    foreign = event("CustomEmailSender_SignUp", "walker-other", "other@example.com", "en",
                    encrypt_like_cognito(key_arn, "us-east-1_Other", "555555"))
    ok, body, _ = fn.invoke(foreign)
    check(not ok and (body or {}).get("errorType") == "WrongUserPool"
          and not to("other@example.com"),
          f"a code encrypted for another pool: {(body or {}).get('errorType')}, nothing sent")
    fn.stop()
    print(f"  invoke (decrypt + limits + send on moto, emulator round trip included), "
          f"n={len(times)}: median {statistics.median(times) * 1000:.1f} ms")


def custom_auth(api):
    print("\n== custom auth: define / create / verify (SMS on moto's SNS)")
    env = {"CHALLENGE_SECRET": SECRET}
    define = Function(api, "define-auth-challenge", "define-auth-challenge", env)
    create = Function(api, "create-auth-challenge", "create-auth-challenge", env)
    verify = Function(api, "verify-auth-challenge", "verify-auth-challenge", env)
    pool = "us-east-1_Walk02"
    timing = {"define": [], "create": [], "verify": []}

    def event(trigger, user, attrs, session, request=None, not_found=False):
        req = {"userAttributes": dict(attrs, sub=user), "session": session,
               "clientMetadata": {}, "userNotFound": not_found}
        req.update(request or {})
        return {"version": "1", "region": REGION, "userPoolId": pool, "userName": user,
                "callerContext": {"awsSdkVersion": "aws-sdk-js-3", "clientId": "walk"},
                "triggerSource": trigger, "request": req, "response": {}}

    def step(name, ok=True, meta=None):
        return {"challengeName": name, "challengeResult": ok, "challengeMetadata": meta}

    def run_define(fn, user, attrs, session, not_found=False):
        ok, body, took = fn.invoke(event("DefineAuthChallenge_Authentication", user, attrs,
                                         session, not_found=not_found))
        timing["define"].append(took)
        r = body.get("response", {}) if ok else {}
        if r.get("issueTokens"):
            return "tokens"
        if r.get("failAuthentication") or not ok:
            return "fail"
        return r.get("challengeName")

    def run_create(user, attrs, session, not_found=False):
        ok, body, took = create.invoke(event("CreateAuthChallenge_Authentication", user, attrs,
                                             session, {"challengeName": "CUSTOM_CHALLENGE"},
                                             not_found))
        timing["create"].append(took)
        assert ok, body
        return body["response"]

    def run_verify(user, attrs, private, answer, not_found=False):
        ok, body, took = verify.invoke(event("VerifyAuthChallengeResponse_Authentication", user,
                                             attrs, [], {"privateChallengeParameters": private,
                                                         "challengeAnswer": answer},
                                             not_found))
        timing["verify"].append(took)
        return ok and body["response"]["answerCorrect"]

    def sign_in(fn, user, attrs, answers, not_found=False):
        """Drives the flow as Cognito does; returns (outcome, SMS sent, path)."""
        # CUSTOM_WITH_SRP: the client's InitiateAuth carries SRP_A, so
        # Cognito's first define call already shows it.
        session, path = [step("SRP_A")], ["SRP_A"]
        before = len(sent_sms())
        for _ in range(20):
            nxt = run_define(fn, user, attrs, session, not_found)
            path.append(nxt)
            if nxt in ("tokens", "fail"):
                return nxt, len(sent_sms()) - before, path
            if nxt in ("SRP_A", "PASSWORD_VERIFIER"):
                session.append(step(nxt))
                continue
            if nxt == "CUSTOM_CHALLENGE":
                resp = run_create(user, attrs, session, not_found)
                texts = [m for p, m in sent_sms() if p == attrs.get("phone_number")]
                code = re.findall(r"\d{6}", texts[-1])[-1] if texts else "000000"
                visible = json.dumps([resp["publicChallengeParameters"], resp["challengeMetadata"]])
                if code in visible:
                    check(False, f"the code of {user} shows in the challenge parameters")
                answer = answers.pop(0) if answers else ""
                if answer == "RIGHT":
                    answer = code
                correct = run_verify(user, attrs, resp["privateChallengeParameters"], answer,
                                     not_found)
                session.append(step("CUSTOM_CHALLENGE", correct, resp["challengeMetadata"]))
        return "loop", 0, path

    taro = {"phone_number": "+819012340002", "locale": "ja", "cognito:user_status": "CONFIRMED"}
    out, sms, path = sign_in(define, "taro", taro, ["RIGHT"])
    check(out == "tokens" and sms == 1, f"SRP -> password -> code -> tokens: {path}, {sms} SMS")
    alice = {"phone_number": "+14155550121", "locale": "en"}
    out, sms, path = sign_in(define, "alice", alice, ["999999", "RIGHT"])
    check(out == "tokens" and sms == 1, f"wrong code, then the right one: {path}, {sms} SMS (retry reuses the code)")
    bob = {"phone_number": "+14155550122"}
    out, sms, path = sign_in(define, "bob", bob, ["111111", "222222", "333333", "RIGHT"])
    check(out == "fail" and sms == 1, f"three wrong codes: {path}")
    ghost = {"phone_number": "+14155550123"}
    out, sms, path = sign_in(define, "ghost", ghost, ["RIGHT"], not_found=True)
    check(out == "fail" and sms == 0, f"unknown user: {path}, {sms} SMS")
    nomfa = {"phone_number": "+14155550124", "custom:mfa_preference": "NOMFA"}
    out, sms, path = sign_in(define, "carol", nomfa, [])
    check(out == "tokens" and sms == 0, f"NOMFA user in an OPTIONAL pool: {path}")
    nophone = {"email": "dave@example.com"}
    out, sms, path = sign_in(define, "dave", nophone, [])
    check(out == "tokens" and sms == 0, f"no phone, OPTIONAL pool: {path}")
    define.stop()
    define_on = Function(api, "define-auth-challenge", "define-auth-challenge",
                         dict(env, MFA_CONFIGURATION="ON"))
    out, sms, path = sign_in(define_on, "dave", nophone, [])
    check(out == "fail" and sms == 0, f"no phone, ON pool: {path}")
    skipped = run_define(define_on, "eve", taro, [step("CUSTOM_CHALLENGE", True)])
    check(skipped == "fail", f"a session that skips the password: {skipped}")
    for fn in (define_on, create, verify):
        fn.stop()
    for name, ts in timing.items():
        print(f"  {name}: warm invoke median {statistics.median(ts) * 1000:.2f} ms "
              f"(n={len(ts)}, emulator round trip included)")


def main():
    api = RuntimeApi()
    try:
        only = sys.argv[1:] or ["pre-sign-up", "post-confirmation", "pre-authentication",
                                "custom-sms-sender", "custom-email-sender", "custom-auth"]
        steps = {"pre-sign-up": pre_sign_up, "post-confirmation": post_confirmation,
                 "pre-authentication": pre_authentication,
                 "custom-sms-sender": custom_sms_sender,
                 "custom-email-sender": custom_email_sender, "custom-auth": custom_auth}
        for name in only:
            steps[name](api)
    finally:
        api.stop()
    print(f"\n{len(failures)} failed" if failures else "\nall as expected")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
