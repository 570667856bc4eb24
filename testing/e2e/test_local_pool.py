"""End to end against the local pool (scripts/local-pool: ministack running the eight
function binaries template.yaml deploys at its defaults, the seven triggers and
account-change behind its HTTP API, with the template's configuration), driven by
pycognito, a client library from PyPI, the way an app drives Cognito: SignUp,
ConfirmSignUp, and sign-in with CUSTOM_AUTH + SRP (Amplify's CUSTOM_WITH_SRP: SRP_A,
PASSWORD_VERIFIER, CUSTOM_CHALLENGE); and the account-change API called with the tokens.

Run by testing/e2e/run, which starts the pool with the overrides these tests need
(BLOCKED_EMAIL_DOMAINS, CodeTtlSeconds) and stops it. Each difference between the
emulator and Cognito that a test meets is written in docs/local-pool.md with the
emulator's source line; the tests name them where they meet them.
"""

import itertools
import json
import re
import secrets
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError
from pycognito import Cognito
from pycognito.aws_srp import AWSSRP

from conftest import local_pool

PASSWORD = "Correct-Horse-9"
RUN = secrets.token_hex(3)


def unique(name):
    return f"{name}-{RUN}"


_phones = itertools.count(secrets.randbelow(9_000))


def new_phone():
    # +1 415 555 xxxx: E.164, a new one per user, so that neither the SMS read nor the
    # per-phone SMS limit (SMS_LIMIT_PER_PHONE=5/15m) ever joins two tests.
    return f"+1415555{next(_phones):04d}"


def app(pool):
    """The app's client: pycognito's Cognito with the pool's endpoint."""
    return Cognito(pool.user_pool_id, pool.client_id, user_pool_region=pool.region,
                   boto3_client_kwargs={"endpoint_url": pool.endpoint, "aws_access_key_id": "test",
                                        "aws_secret_access_key": "test"})


def sign_up(pool, username, email, phone=None, preference=None):
    c = app(pool)
    attrs = {"email": email}
    if phone:
        attrs["phone_number"] = phone
    c.set_base_attributes(**attrs)
    if preference:
        c.add_custom_attributes(mfa_preference=preference)
    return c.register(username, PASSWORD)


def confirmed_user(pool, name, phone=None, preference=None, post_confirmation=True):
    """A user signed up through the app, confirmed with a code, then the PostConfirmation substitute."""
    username = unique(name)
    sign_up(pool, username, f"{username}@example.com", phone, preference)
    # Emulator: any code confirms (cognito.py:5270-5271).
    app(pool).confirm_sign_up("000000", username)
    if post_confirmation:
        local_pool("confirm", username, "--json")
    return username


def error_of(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


def start_custom_sign_in(pool, username, password=PASSWORD):
    """CUSTOM_AUTH with SRP up to the answer to PASSWORD_VERIFIER: what Amplify's
    signIn({ authFlowType: 'CUSTOM_WITH_SRP' }) sends, with pycognito's SRP."""
    srp = AWSSRP(username=username, password=password, pool_id=pool.user_pool_id,
                 client_id=pool.client_id, client=pool.idp)
    params = dict(srp.get_auth_params(), CHALLENGE_NAME="SRP_A")
    r = pool.idp.initiate_auth(ClientId=pool.client_id, AuthFlow="CUSTOM_AUTH", AuthParameters=params)
    assert r["ChallengeName"] == "PASSWORD_VERIFIER"
    return pool.idp.respond_to_auth_challenge(
        ClientId=pool.client_id, ChallengeName="PASSWORD_VERIFIER", Session=r["Session"],
        ChallengeResponses=srp.process_challenge(r["ChallengeParameters"], params))


def answer(pool, r, username, code):
    assert r.get("ChallengeName") == "CUSTOM_CHALLENGE", r
    return pool.idp.respond_to_auth_challenge(
        ClientId=pool.client_id, ChallengeName="CUSTOM_CHALLENGE", Session=r["Session"],
        ChallengeResponses={"USERNAME": username, "ANSWER": code})


def code_in(text):
    return re.search(r"\b(\d{6})\b", text).group(1)


def verified_claims(pool, result):
    """The tokens checked with pycognito against the pool's JWKS. Their issuer is
    Cognito's (https://cognito-idp.REGION.amazonaws.com/POOL), as on AWS; pycognito
    expects the endpoint as issuer once an endpoint_url is given, so the checking
    client keeps the AWS issuer and gets the local JWKS."""
    c = Cognito(pool.user_pool_id, pool.client_id, user_pool_region=pool.region)
    c.client = pool.idp
    c.pool_jwk = pool.jwks()
    c.verify_token(result["AccessToken"], "access_token", "access")
    return c.verify_token(result["IdToken"], "id_token", "id")


def mfa_of(pool, username):
    u = pool.idp.admin_get_user(UserPoolId=pool.user_pool_id, Username=username)
    # Emulator: "" and [] where Cognito leaves the fields out (cognito.py:3949-3950).
    return u.get("UserMFASettingList") or [], u.get("PreferredMfaSetting") or None


# ---------------------------------------------------------------- sign-up --

def test_sign_up_refused_for_a_bad_phone(pool):
    username = unique("badphone")
    with pytest.raises(ClientError) as e:
        sign_up(pool, username, f"{username}@example.com", phone="0044 20 7946 0000")
    code, message = error_of(e)
    assert code == "UserLambdaValidationException"
    # pre-sign-up's message; Cognito wraps it as "PreSignUp failed with error <message>.",
    # the emulator hands on the function's error object (cognito.py:1250-1254, 5181-5183).
    assert "international format" in message
    with pytest.raises(ClientError) as e:
        pool.idp.admin_get_user(UserPoolId=pool.user_pool_id, Username=username)
    assert error_of(e)[0] == "UserNotFoundException"


def test_sign_up_refused_for_a_blocked_domain(pool):
    blocked = pool.overrides.get("BLOCKED_EMAIL_DOMAINS")
    if not blocked:
        pytest.skip("start the pool with --set BLOCKED_EMAIL_DOMAINS=blocked.example (testing/e2e/run does)")
    domain = blocked.split(",")[0].strip().lstrip(".")
    username = unique("blocked")
    with pytest.raises(ClientError) as e:
        sign_up(pool, username, f"{username}@{domain}", phone=new_phone(), preference="SMS")
    code, message = error_of(e)
    assert code == "UserLambdaValidationException"
    assert "Sign-up with this email address is not allowed" in message
    assert domain not in message, "the refusal must not name the list"
    # The same sign-up with another domain passes: the rule, not the user, refused it.
    assert sign_up(pool, username, f"{username}@example.com", phone=new_phone(), preference="SMS")


def test_sign_up_accepted_and_confirmed(pool):
    username = unique("carol")
    out = sign_up(pool, username, f"{username}@example.com", phone=new_phone(), preference="SMS")
    # pre-sign-up never auto-confirms: the user stays unconfirmed until Cognito's own code
    # comes back.
    assert out["UserConfirmed"] is False
    # Where that code goes: with PhoneNumberChange=VerifyFirst (the template's default)
    # phone_number is auto-verified as well as email, and real Cognito confirms a sign-up
    # that gives a phone by SMS to that phone only (with both auto-verified it verifies the
    # phone number: Cognito developer guide, "Configuring email or phone verification"):
    # DeliveryMedium SMS, AttributeName phone_number, the code sent through
    # custom-sms-sender. Emulator: ministack answers EMAIL for every sign-up that has an
    # email, whatever AutoVerifiedAttributes says (cognito.py:5212-5218;
    # AutoVerifiedAttributes is only stored, 2988). This assertion holds only because of
    # that emulator quirk: it pins what the emulator does, not what Cognito does (on
    # Cognito this user's code goes by SMS).
    assert out["CodeDeliveryDetails"]["DeliveryMedium"] == "EMAIL"
    status = pool.idp.admin_get_user(UserPoolId=pool.user_pool_id, Username=username)["UserStatus"]
    assert status == "UNCONFIRMED"
    # Emulator: codes are not checked, "000000" confirms (cognito.py:5270-5271); Cognito
    # checks the code it sent (by SMS for this user, see above).
    app(pool).confirm_sign_up("000000", username)
    status = pool.idp.admin_get_user(UserPoolId=pool.user_pool_id, Username=username)["UserStatus"]
    assert status == "CONFIRMED"


def test_post_confirmation_substitute_sets_the_users_mfa(pool):
    sms_user = confirmed_user(pool, "dave", phone=new_phone(), preference="SMS", post_confirmation=False)
    nomfa_user = confirmed_user(pool, "erin", phone=new_phone(), preference="NOMFA", post_confirmation=False)
    default_user = confirmed_user(pool, "faye", phone=new_phone(), post_confirmation=False)
    # Emulator: ConfirmSignUp fired no PostConfirmation (cognito.py:5250-5275): nothing set yet.
    assert mfa_of(pool, sms_user) == ([], None)
    # The labelled substitute: local-pool invokes post-confirmation itself.
    out = local_pool("confirm", sms_user, "--json")
    assert out["substitute"].startswith("PostConfirmation")
    assert out["triggerSource"] == "PostConfirmation_ConfirmSignUp" and out["error"] is None
    assert mfa_of(pool, sms_user) == (["SMS_MFA"], "SMS_MFA")
    local_pool("confirm", nomfa_user, "--json")
    assert mfa_of(pool, nomfa_user) == ([], None)
    # No stated choice: the pool's default (MFA_DEFAULT_PREFERENCE=SMS).
    local_pool("confirm", default_user, "--json")
    assert mfa_of(pool, default_user) == (["SMS_MFA"], "SMS_MFA")


# ---------------------------------------------------------------- sign-in --

def test_custom_sign_in_with_the_sms_code(pool, timings):
    phone = new_phone()
    username = confirmed_user(pool, "gina", phone=phone, preference="SMS")
    started = time.monotonic()
    r = start_custom_sign_in(pool, username)
    to_challenge = time.monotonic() - started
    # Emulator: define-auth-challenge is asked after PASSWORD_VERIFIER although the user has
    # SMS MFA enabled (cognito.py:4513-4527); Cognito would run its own SMS_MFA here
    # (custom-sms-sender sending the code), see docs/local-pool.md.
    assert r["ChallengeName"] == "CUSTOM_CHALLENGE"
    assert r["ChallengeParameters"] == {"deliveryMedium": "SMS", "codeLength": "6"}
    texts = pool.sms(phone)
    assert len(texts) == 1 and texts[0].startswith("Your authentication code is ")
    answered = time.monotonic()
    result = answer(pool, r, username, code_in(texts[-1]))["AuthenticationResult"]
    done = time.monotonic()
    timings.append(("first custom sign-in of the run (cold functions), InitiateAuth -> tokens, "
                    "without reading the SMS", to_challenge + done - answered))
    timings.append(("  the same, reading the SMS with scripts/local-pool sms included", done - started))
    claims = verified_claims(pool, result)
    assert claims["cognito:username"] == username
    assert claims["custom:mfa_preference"] == "SMS"
    assert claims["phone_number"] == phone


def test_wrong_code_then_the_right_one_in_a_new_sign_in(pool, timings):
    phone = new_phone()
    username = confirmed_user(pool, "hank", phone=phone, preference="SMS")
    r = start_custom_sign_in(pool, username)
    sent = code_in(pool.sms(phone)[-1])
    wrong = f"{(int(sent) + 1) % 1_000_000:06d}"
    # Emulator: at most 3 answered rounds per session, SRP_A and PASSWORD_VERIFIER counted
    # (cognito.py:605, 2070-2075): the first wrong code ends the sign-in. On Cognito,
    # define-auth-challenge would ask again (MAX_CODE_ATTEMPTS=3) in the same session.
    with pytest.raises(ClientError) as e:
        answer(pool, r, username, wrong)
    assert error_of(e)[0] == "NotAuthorizedException"
    # A new sign-in, answered with the code the user has (the last SMS).
    started = time.monotonic()
    r = start_custom_sign_in(pool, username)
    to_challenge = time.monotonic() - started
    texts = pool.sms(phone)
    answered = time.monotonic()
    result = answer(pool, r, username, code_in(texts[-1]))["AuthenticationResult"]
    timings.append(("custom sign-in with warm functions, InitiateAuth -> tokens, without reading the SMS",
                    to_challenge + time.monotonic() - answered))
    assert verified_claims(pool, result)["cognito:username"] == username


def test_a_new_sign_in_after_the_code_expired_sends_a_fresh_code(pool):
    # create-auth-challenge recognises Cognito's retry of a challenge by (pool, user, session),
    # and every sign-in's first code has the same session [SRP_A, PASSWORD_VERIFIER]: the
    # record must not outlive the retries, or a new sign-in would get the first, expired,
    # code back and no SMS.
    ttl = int(pool.overrides.get("CodeTtlSeconds", "180"))
    if ttl > 60:
        pytest.skip("start the pool with --set CodeTtlSeconds=30 (testing/e2e/run does)")
    phone = new_phone()
    username = confirmed_user(pool, "iris", phone=phone, preference="SMS")
    start_custom_sign_in(pool, username)       # the user walks away from this one
    assert len(pool.sms(phone)) == 1
    time.sleep(ttl + 2)
    r = start_custom_sign_in(pool, username)
    texts = pool.sms(phone)
    assert len(texts) == 2, f"no new SMS for the new sign-in: {texts}"
    answer(pool, r, username, code_in(texts[-1]))


def test_wrong_password_sends_no_sms(pool):
    phone = new_phone()
    username = confirmed_user(pool, "jack", phone=phone, preference="SMS")
    with pytest.raises(ClientError) as e:
        start_custom_sign_in(pool, username, password="Wrong-Horse-9")
    # Emulator: the wrong proof is refused without asking define-auth-challenge
    # (cognito.py:4503-4506); Cognito asks it with PASSWORD_VERIFIER false, and it fails
    # the sign-in: the same answer for the app.
    assert error_of(e) == ("NotAuthorizedException", "Incorrect username or password.")
    assert pool.sms(phone) == []


def test_nomfa_user_gets_tokens_without_a_code(pool):
    phone = new_phone()
    username = confirmed_user(pool, "kate", phone=phone, preference="NOMFA")
    r = start_custom_sign_in(pool, username)
    assert "ChallengeName" not in r or r["ChallengeName"] is None
    claims = verified_claims(pool, r["AuthenticationResult"])
    assert claims["custom:mfa_preference"] == "NOMFA"
    assert pool.sms(phone) == []


def test_unknown_user_cannot_sign_in(pool):
    with pytest.raises(ClientError) as e:
        start_custom_sign_in(pool, unique("nobody"))
    # Emulator: UserNotFoundException at InitiateAuth (cognito.py:4911-4914) although the
    # client sets PreventUserExistenceErrors; Cognito runs the challenge triggers with
    # userNotFound=true and refuses at the end like a wrong password.
    assert error_of(e)[0] in ("UserNotFoundException", "NotAuthorizedException")


# ------------------------------------------------------- account-change API --

def account_change_url():
    """AccountChangeApi's URL from `local-pool status --json` (the API exists with AccountChange=RecentSignIn)."""
    api = (local_pool("status", "--json").get("apis") or {}).get("AccountChangeApi")
    if not api:
        pytest.skip("the pool has no AccountChangeApi (started with AccountChange=AccessToken)")
    return api["url"]


def post(url, authorization=None, body=b"{}"):
    """POST a JSON body; (status, the JSON answer)."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/json"})
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_account_change_api_takes_only_an_access_token_of_the_pool(pool):
    url = account_change_url() + "/account/email"
    username = confirmed_user(pool, "lena", phone=new_phone(), preference="NOMFA")
    tokens = start_custom_sign_in(pool, username)["AuthenticationResult"]
    # The JWT authorizer answers before the function (emulator: services/apigateway.py
    # _validate_jwt_authorizer): no token, 401; an ID token, which lacks the scope
    # aws.cognito.signin.user.admin the routes require, 403 (which of the two Cognito's
    # API Gateway gives for a missing scope is not verified: docs/account-change.md).
    assert post(url)[0] == 401
    assert post(url, tokens["IdToken"])[0] == 403
    # A fresh access token of this pool and client passes the authorizer and account-change's
    # recent-sign-in rule; the function then refuses the empty body itself, before any call
    # to Cognito or DynamoDB (functions/account-change/src/lib.rs, `field`).
    status, body = post(url, "Bearer " + tokens["AccessToken"], b"{}")
    assert (status, body.get("error")) == (400, "InvalidRequest"), body


# ------------------------------------------------------------- app-config --

def test_app_config_from_the_local_pool_connects_an_app(pool):
    """`mfa-admin app-config` against the local pool prints Amplify v6's and Gen 2's
    configuration; an app configured from the Gen 2 output (pool, client, region) signs in."""
    import os
    import subprocess
    binary = os.path.join(os.environ.get("BIN_DIR", "target/debug"), "mfa-admin")
    status = local_pool("status", "--json")
    api = (status.get("apis") or {}).get("AccountChangeApi") or {}
    args = [binary, "--endpoint-url", pool.endpoint, "--region", pool.region,
            "--user-pool-id", pool.user_pool_id, "app-config", "--client-id", pool.client_id]
    if api.get("url"):
        args += ["--account-change-url", api["url"]]
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    config = json.loads(out.stdout)
    cognito = config["amplify_v6"]["Auth"]["Cognito"]
    auth = config["amplify_outputs"]["auth"]
    assert cognito["userPoolId"] == auth["user_pool_id"] == pool.user_pool_id
    assert cognito["userPoolClientId"] == auth["user_pool_client_id"] == pool.client_id
    described = pool.idp.describe_user_pool(UserPoolId=pool.user_pool_id)["UserPool"]
    assert auth["mfa_configuration"] == described.get("MfaConfiguration", "OFF")
    assert auth["password_policy"]["min_length"] == described["Policies"]["PasswordPolicy"]["MinimumLength"]
    if api.get("url"):
        assert config["amplify_v6"]["API"]["REST"]["accountChange"]["endpoint"] == api["url"]
    # The app, configured from amplify_outputs.json alone, signs a user in.
    username = confirmed_user(pool, "otto", phone=new_phone(), preference="NOMFA")
    # USER_SRP_AUTH with the pool and client from amplify_outputs.json: a NOMFA user gets tokens.
    result = AWSSRP(username=username, password=PASSWORD, pool_id=auth["user_pool_id"],
                    client_id=auth["user_pool_client_id"], client=pool.idp).authenticate_user()
    claims = verified_claims(pool, result["AuthenticationResult"])
    assert claims["cognito:username"] == username
