"""Security rules checked on the template expanded by aws-sam-translator.

Run by scripts/check-template as `check_template_rules.py EXPANDED.json`.
Each rule is a function of the expanded CloudFormation template that returns
a list of problems (empty = holds). Before judging the real template, the
checker applies known-bad mutations to a copy of it and requires each to be
caught by the rule it targets, so a rule that can never fail fails the
check.

Functions are found by their binary (Metadata.BuildProperties.Binary, kept
by the expansion), roles by the functions' Role, and a role's statements are
its inline policies plus every AWS::IAM::Policy / ManagedPolicy attached to
it in the template. A statement under Fn::If counts in both branches.
"""

import copy
import fnmatch
import json
import sys

SENDER = "custom-sms-sender"
CREATE = "create-auth-challenge"
VERIFY = "verify-auth-challenge"
PRE_AUTH = "pre-authentication"

# The limits table's rights, per function, exactly (case-insensitive).
TABLE_ACTIONS = {
    SENDER: {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
             "dynamodb:GetItem", "dynamodb:ConditionCheckItem"},
    CREATE: {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
             "dynamodb:GetItem", "dynamodb:ConditionCheckItem"},
    VERIFY: {"dynamodb:UpdateItem", "dynamodb:DeleteItem"},
}
VERIFY_LEADING_KEYS = {"codefail#*", "challenge#*"}
DLQ_KEY_ACTIONS = {"kms:decrypt", "kms:generatedatakey"}
ACCOUNT_ROOT = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
POOLS_OF_THIS_ACCOUNT = "arn:${AWS::Partition}:cognito-idp:${AWS::Region}:${AWS::AccountId}:userpool/*"
ALARM_METRIC = ("CognitoMfaTriggers", "SignInWithoutFactor")
ALARM_PARAMETER = "SignInWithoutFactorAlarmThreshold"
NO_VALUE = {"Ref": "AWS::NoValue"}


# ------------------------------------------------------------- helpers --
def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def branches(value):
    """The values `value` can take: both sides of an Fn::If, never NoValue."""
    if isinstance(value, dict) and "Fn::If" in value:
        _, yes, no = value["Fn::If"]
        return branches(yes) + branches(no)
    return [] if value == NO_VALUE else [value]


def if_condition(value):
    """The condition an Fn::If value is chosen under, or None."""
    if isinstance(value, dict) and "Fn::If" in value:
        return value["Fn::If"][0]
    return None


def target(value):
    """The logical id named by {Ref: X} or {Fn::GetAtt: X.Arn}, else None."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            return value["Ref"]
        att = value.get("Fn::GetAtt")
        if isinstance(att, str):
            att = att.split(".", 1)
        if isinstance(att, list) and len(att) == 2 and att[1] == "Arn":
            return att[0]
    return None


def resources(template, kind=None):
    return {
        name: body
        for name, body in template.get("Resources", {}).items()
        if kind is None or body.get("Type") == kind
    }


def props(body):
    return body.get("Properties", {}) or {}


def functions(template):
    """Binary name -> (logical id, resource) of every Lambda function."""
    found = {}
    for name, body in resources(template, "AWS::Lambda::Function").items():
        binary = (body.get("Metadata", {}).get("BuildProperties", {}) or {}).get("Binary", name)
        found[binary] = (name, body)
    return found


def function(template, binary):
    found = functions(template).get(binary)
    if found is None:
        raise LookupError(f"no function with binary {binary}")
    return found


def env(body):
    return ((props(body).get("Environment") or {}).get("Variables")) or {}


def role_of(body):
    return target(props(body).get("Role"))


def statements_of(document):
    out = []
    for statement in as_list((document or {}).get("Statement")):
        out.extend(branches(statement))
    return out


def role_statements(template, role):
    """(statements, problems) of everything attached to `role` in the template."""
    found, problems = [], []
    body = resources(template).get(role)
    if body is None:
        return [], [f"role {role} is not in the template"]
    for policy in as_list(props(body).get("Policies")):
        for p in branches(policy):
            found.extend(statements_of(p.get("PolicyDocument")))
    managed = resources(template, "AWS::IAM::ManagedPolicy")
    for arn in as_list(props(body).get("ManagedPolicyArns")):
        for a in branches(arn):
            if target(a) in managed:
                found.extend(statements_of(props(managed[target(a)]).get("PolicyDocument")))
            else:
                problems.append(f"role {role} has a managed policy not in the template: {json.dumps(a)}")
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, policy in resources(template, kind).items():
            roles = [target(r) for r in as_list(props(policy).get("Roles")) for r in branches(r)]
            if role in roles:
                found.extend(statements_of(props(policy).get("PolicyDocument")))
    return found, problems


def patterns(statement):
    """Lower-case action patterns an Allow statement grants; NotAction = '*'."""
    if statement.get("Effect") != "Allow":
        return []
    if "NotAction" in statement:
        return ["*"]
    return [str(a).lower() for a in as_list(statement.get("Action"))]


def touches(statement, service):
    """Whether an Allow statement can grant any action of `service`."""
    return any(fnmatch.fnmatchcase(service, p.split(":", 1)[0]) for p in patterns(statement))


def grants(statement, action):
    return any(fnmatch.fnmatchcase(action.lower(), p) for p in patterns(statement))


def literal(pattern):
    return not any(c in pattern for c in "*?")


def condition(statement, operator, key):
    """Values of `key` under `operator` (case-insensitive key), or None."""
    block = (statement.get("Condition") or {}).get(operator)
    if not isinstance(block, dict):
        return None
    for k, v in block.items():
        if k.lower() == key.lower():
            return as_list(v)
    return None


def function_statements(template, binary):
    _, body = function(template, binary)
    role = role_of(body)
    if role is None:
        return [], [f"{binary}: its Role is not a role of the template"]
    return role_statements(template, role)


# --------------------------------------------------------------- rules --
def rule_verify_leading_keys(template):
    """(a) verify-auth-challenge: only UpdateItem/DeleteItem, on codefail#/challenge# keys."""
    statements, problems = function_statements(template, VERIFY)
    relevant = [s for s in statements if touches(s, "dynamodb")]
    if not relevant:
        problems.append(f"{VERIFY}: no DynamoDB statement")
    allowed = {a.lower() for a in TABLE_ACTIONS[VERIFY]}
    for s in relevant:
        extra = [p for p in patterns(s)
                 if touches({"Effect": "Allow", "Action": p}, "dynamodb") and (not literal(p) or p not in allowed)]
        if extra:
            problems.append(f"{VERIFY}: DynamoDB actions other than UpdateItem/DeleteItem: {extra}")
        keys = condition(s, "ForAllValues:StringLike", "dynamodb:LeadingKeys")
        if keys is None or set(keys) != VERIFY_LEADING_KEYS:
            problems.append(
                f"{VERIFY}: a DynamoDB statement without ForAllValues:StringLike dynamodb:LeadingKeys "
                f"= {sorted(VERIFY_LEADING_KEYS)} (has {keys})")
    return problems


def rule_table_actions(template):
    """Each function's DynamoDB actions are exactly its list; no other function has any."""
    problems = []
    for binary, (_, body) in sorted(functions(template).items()):
        role = role_of(body)
        statements, unresolved = role_statements(template, role) if role else ([], [])
        problems += unresolved
        granted = set()
        for s in statements:
            if touches(s, "dynamodb"):
                for p in patterns(s):
                    if not literal(p):
                        problems.append(f"{binary}: wildcard action {p} reaches DynamoDB")
                    elif p.startswith("dynamodb:"):
                        granted.add(p)
        expected = {a.lower() for a in TABLE_ACTIONS.get(binary, set())}
        if granted != expected:
            problems.append(f"{binary}: DynamoDB actions {sorted(granted)}, expected {sorted(expected)}")
    return problems


def rule_sms_role_trust(template):
    """(b) the pool's SMS role trusts Cognito only with aws:SourceArn and aws:SourceAccount."""
    problems = []
    pools = resources(template, "AWS::Cognito::UserPool")
    roles = {target((props(p).get("SmsConfiguration") or {}).get("SnsCallerArn")) for p in pools.values()}
    roles.discard(None)
    if not roles:
        return ["no user pool names an SMS role (SmsConfiguration.SnsCallerArn)"]
    for role in sorted(roles):
        body = resources(template).get(role, {})
        trust = statements_of(props(body).get("AssumeRolePolicyDocument"))
        if not trust:
            problems.append(f"{role}: no trust policy")
        for s in trust:
            if s.get("Effect") != "Allow":
                continue
            account = condition(s, "StringEquals", "aws:SourceAccount")
            if account != [{"Ref": "AWS::AccountId"}]:
                problems.append(f"{role}: trust without aws:SourceAccount = this account (has {account})")
            arns = (condition(s, "ArnLike", "aws:SourceArn") or condition(s, "ArnEquals", "aws:SourceArn"))
            if not arns or any(
                not (isinstance(a, dict) and isinstance(a.get("Fn::Sub"), str)
                     and a["Fn::Sub"].startswith(POOLS_OF_THIS_ACCOUNT[:-1]))
                and not (isinstance(a, dict) and target(a) in pools)
                for a in arns
            ):
                problems.append(f"{role}: trust without aws:SourceArn on this account's user pools (has {arns})")
            if condition(s, "StringEquals", "sts:ExternalId") is None:
                problems.append(f"{role}: trust without sts:ExternalId")
    return problems


def rule_dead_letter_key(template):
    """(c) the sender's dead-letter queue is under a template key used only by root and the sender."""
    problems = []
    name, body = function(template, SENDER)
    sender_role = role_of(body)
    queues = set()
    for config in resources(template, "AWS::Lambda::EventInvokeConfig").values():
        if target(props(config).get("FunctionName")) == name:
            failure = ((props(config).get("DestinationConfig") or {}).get("OnFailure") or {})
            queues.add(target(failure.get("Destination")))
    queues.discard(None)
    if not queues:
        return [f"{SENDER}: no on-failure destination"]
    keys = resources(template, "AWS::KMS::Key")
    for queue in sorted(queues):
        q = props(resources(template).get(queue, {}))
        if q.get("SqsManagedSseEnabled"):
            problems.append(f"{queue}: SqsManagedSseEnabled is set")
        key = target(q.get("KmsMasterKeyId"))
        if key not in keys:
            problems.append(f"{queue}: KmsMasterKeyId is not a key of the template ({q.get('KmsMasterKeyId')})")
            continue
        k = props(keys[key])
        if k.get("EnableKeyRotation") is not True:
            problems.append(f"{key}: key rotation is off")
        policy = statements_of(k.get("KeyPolicy"))
        if not any(s.get("Principal") == {"AWS": ACCOUNT_ROOT} for s in policy):
            problems.append(f"{key}: no account-root statement")
        sender_named = False
        for s in policy:
            if "NotPrincipal" in s:
                problems.append(f"{key}: a statement with NotPrincipal")
                continue
            principal = s.get("Principal")
            if principal == {"AWS": ACCOUNT_ROOT}:
                continue
            if isinstance(principal, dict) and set(principal) == {"AWS"} and len(as_list(principal["AWS"])) == 1 \
                    and target(as_list(principal["AWS"])[0]) == sender_role:
                sender_named = True
                actions = set(patterns(s))
                if actions != DLQ_KEY_ACTIONS:
                    problems.append(f"{key}: the sender's role gets {sorted(actions)}, not {sorted(DLQ_KEY_ACTIONS)}")
                continue
            problems.append(f"{key}: names a principal other than the account root and {sender_role}: {json.dumps(principal)}")
        if not sender_named:
            problems.append(f"{key}: the sender's role {sender_role} is not named")
    return problems


def rule_sign_in_without_factor_alarm(template):
    """(d) an alarm on SignInWithoutFactor of pre-authentication, threshold = the parameter."""
    parameter = template.get("Parameters", {}).get(ALARM_PARAMETER)
    if not parameter or parameter.get("Type") != "Number":
        return [f"no Number parameter {ALARM_PARAMETER}"]
    pre_auth, _ = function(template, PRE_AUTH)
    for name, body in resources(template, "AWS::CloudWatch::Alarm").items():
        p = props(body)
        if (p.get("Namespace"), p.get("MetricName")) != ALARM_METRIC:
            continue
        problems = []
        if p.get("Threshold") != {"Ref": ALARM_PARAMETER}:
            problems.append(f"{name}: Threshold is not Ref {ALARM_PARAMETER}")
        if p.get("Dimensions") != [{"Name": "Function", "Value": {"Ref": pre_auth}}]:
            problems.append(f"{name}: Dimensions are not [Function = {pre_auth}]")
        if p.get("ComparisonOperator") != "GreaterThanOrEqualToThreshold" or p.get("Statistic") != "Sum":
            problems.append(f"{name}: not Sum >= threshold")
        if not p.get("AlarmActions"):
            problems.append(f"{name}: no AlarmActions")
        if not problems:
            return []
        return problems
    return [f"no alarm on {'/'.join(ALARM_METRIC)}"]


def rule_limit_key_secret(template):
    """(e) SMS_LIMIT_TABLE comes with LIMIT_KEY_SECRET_ARN and GetSecretValue on that secret."""
    problems = []
    secrets = resources(template, "AWS::SecretsManager::Secret")
    users = 0
    for binary, (_, body) in sorted(functions(template).items()):
        variables = env(body)
        if "SMS_LIMIT_TABLE" not in variables:
            continue
        users += 1
        value = variables.get("LIMIT_KEY_SECRET_ARN")
        refs = [target(v) for v in branches(value)]
        if value is None or len(refs) != 1 or refs[0] not in secrets or "Ref" not in branches(value)[0]:
            problems.append(f"{binary}: LIMIT_KEY_SECRET_ARN is not Ref of a secret of the template ({value})")
            continue
        secret = refs[0]
        table_condition = if_condition(variables["SMS_LIMIT_TABLE"])
        if if_condition(value) != table_condition:
            problems.append(f"{binary}: LIMIT_KEY_SECRET_ARN is given under {if_condition(value)}, "
                            f"SMS_LIMIT_TABLE under {table_condition}")
        if secrets[secret].get("Condition") not in (None, table_condition):
            problems.append(f"{binary}: secret {secret} exists under {secrets[secret]['Condition']}, "
                            f"SMS_LIMIT_TABLE under {table_condition}")
        statements, unresolved = function_statements(template, binary)
        problems += unresolved
        exact = False
        for s in statements:
            if not grants(s, "secretsmanager:GetSecretValue"):
                continue
            resource_values = as_list(s.get("Resource"))
            if "NotResource" in s or any(not target(r) for v in resource_values for r in branches(v)):
                problems.append(f"{binary}: GetSecretValue on more than named secrets: {json.dumps(s)}")
            if resource_values == [{"Ref": secret}] or (
                    len(resource_values) == 1 and if_condition(resource_values[0]) == table_condition
                    and [target(r) for r in branches(resource_values[0])] == [secret]
                    and "Ref" in branches(resource_values[0])[0]):
                exact = True
        if not exact:
            problems.append(f"{binary}: no GetSecretValue statement on exactly {secret}")
    if users == 0:
        problems.append("no function gets SMS_LIMIT_TABLE")
    return problems


def rule_sender_environment(template):
    """custom-sms-sender gets no CODE_FAILURES_PER_USER (it never uses it)."""
    _, body = function(template, SENDER)
    if "CODE_FAILURES_PER_USER" in env(body):
        return [f"{SENDER}: gets CODE_FAILURES_PER_USER"]
    return []


RULES = [
    rule_verify_leading_keys,
    rule_table_actions,
    rule_sms_role_trust,
    rule_dead_letter_key,
    rule_sign_in_without_factor_alarm,
    rule_limit_key_secret,
    rule_sender_environment,
]


# ----------------------------------------------------------- mutations --
def _role(t, binary):
    return props(resources(t)[role_of(function(t, binary)[1])])


def _table_statements(t, binary):
    found = []
    for policy in _role(t, binary).get("Policies", []):
        found += [s for s in as_list(policy["PolicyDocument"]["Statement"])
                  if isinstance(s, dict) and touches(s, "dynamodb")]
    assert found, f"mutation: {binary} has no DynamoDB statement to change"
    return found


def _add_statement(t, binary, statement):
    _role(t, binary)["Policies"][0]["PolicyDocument"]["Statement"].append(statement)


def _secret_statement(t, binary):
    secret = target(env(function(t, binary)[1])["LIMIT_KEY_SECRET_ARN"])
    for policy in _role(t, binary)["Policies"]:
        for s in as_list(policy["PolicyDocument"]["Statement"]):
            if isinstance(s, dict) and s.get("Resource") == {"Ref": secret}:
                return policy["PolicyDocument"]["Statement"], s
    raise AssertionError(f"mutation: {binary} has no statement on its limit secret")


def _sms_trust(t):
    pool = next(iter(resources(t, "AWS::Cognito::UserPool").values()))
    role = target(props(pool)["SmsConfiguration"]["SnsCallerArn"])
    return props(resources(t)[role])["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]


def _queue(t):
    name = function(t, SENDER)[0]
    for config in resources(t, "AWS::Lambda::EventInvokeConfig").values():
        if target(props(config)["FunctionName"]) == name:
            return props(resources(t)[target(props(config)["DestinationConfig"]["OnFailure"]["Destination"])])
    raise AssertionError("mutation: no dead-letter queue")


def _key_policy(t):
    return props(resources(t)[target(_queue(t)["KmsMasterKeyId"])])["KeyPolicy"]["Statement"]


def _alarm(t):
    for body in resources(t, "AWS::CloudWatch::Alarm").values():
        if props(body).get("MetricName") == ALARM_METRIC[1]:
            return props(body)
    raise AssertionError("mutation: no SignInWithoutFactor alarm")


def _drop_trust_key(t, operator, key):
    block = _sms_trust(t)[operator]
    del block[key]
    if not block:
        del _sms_trust(t)[operator]


MUTATIONS = [
    ("verify may also GetItem", rule_verify_leading_keys,
     lambda t: _table_statements(t, VERIFY)[0]["Action"].append("dynamodb:GetItem")),
    ("verify's table statement loses its condition", rule_verify_leading_keys,
     lambda t: _table_statements(t, VERIFY)[0].pop("Condition")),
    ("verify may also touch per_user# keys", rule_verify_leading_keys,
     lambda t: _table_statements(t, VERIFY)[0]["Condition"]["ForAllValues:StringLike"]
     ["dynamodb:LeadingKeys"].append("per_user#*")),
    ("verify's keys as ForAnyValue", rule_verify_leading_keys,
     lambda t: _table_statements(t, VERIFY)[0].update(Condition={"ForAnyValue:StringLike": {
         "dynamodb:LeadingKeys": sorted(VERIFY_LEADING_KEYS)}})),
    ("verify gets a second, unconditioned DynamoDB statement", rule_verify_leading_keys,
     lambda t: _add_statement(t, VERIFY, {"Effect": "Allow", "Action": "dynamodb:DeleteItem", "Resource": "*"})),
    ("verify gets dynamodb:* through a wildcard", rule_verify_leading_keys,
     lambda t: _add_statement(t, VERIFY, {"Effect": "Allow", "Action": "dynamo*", "Resource": "*"})),
    ("the sender may Scan", rule_table_actions,
     lambda t: _table_statements(t, SENDER)[0]["Action"].append("dynamodb:Scan")),
    ("create loses ConditionCheckItem", rule_table_actions,
     lambda t: _table_statements(t, CREATE)[0]["Action"].remove("dynamodb:ConditionCheckItem")),
    ("pre-authentication may read the table", rule_table_actions,
     lambda t: _add_statement(t, PRE_AUTH, {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"})),
    ("the SMS role's trust loses aws:SourceArn", rule_sms_role_trust,
     lambda t: _drop_trust_key(t, "ArnLike", "aws:SourceArn")),
    ("the SMS role's trust loses aws:SourceAccount", rule_sms_role_trust,
     lambda t: _drop_trust_key(t, "StringEquals", "aws:SourceAccount")),
    ("the SMS role trusts any pool of any account", rule_sms_role_trust,
     lambda t: _sms_trust(t)["ArnLike"].update({"aws:SourceArn": "arn:aws:cognito-idp:*:*:userpool/*"})),
    ("the queue under SQS-managed encryption", rule_dead_letter_key,
     lambda t: (_queue(t).pop("KmsMasterKeyId"), _queue(t).update(SqsManagedSseEnabled=True))),
    ("the queue under the AWS-managed SQS key", rule_dead_letter_key,
     lambda t: _queue(t).update(KmsMasterKeyId="alias/aws/sqs")),
    ("the key policy lets SQS itself in", rule_dead_letter_key,
     lambda t: _key_policy(t).append({"Effect": "Allow", "Principal": {"Service": "sqs.amazonaws.com"},
                                      "Action": "kms:Decrypt", "Resource": "*"})),
    ("the key policy lets everyone decrypt", rule_dead_letter_key,
     lambda t: _key_policy(t).append({"Effect": "Allow", "Principal": {"AWS": "*"},
                                      "Action": "kms:Decrypt", "Resource": "*"})),
    ("the key policy names another role", rule_dead_letter_key,
     lambda t: _key_policy(t).append({"Effect": "Allow", "Principal": {"AWS": {"Fn::GetAtt": [
         role_of(function(t, VERIFY)[1]), "Arn"]}}, "Action": "kms:Decrypt", "Resource": "*"})),
    ("the sender's role gets kms:* on the key", rule_dead_letter_key,
     lambda t: [s.update(Action="kms:*") for s in _key_policy(t) if s.get("Principal") != {"AWS": ACCOUNT_ROOT}]),
    ("no SignInWithoutFactor alarm", rule_sign_in_without_factor_alarm,
     lambda t: _alarm(t).update(MetricName="Renamed")),
    ("the alarm's threshold is a literal", rule_sign_in_without_factor_alarm,
     lambda t: _alarm(t).update(Threshold=5)),
    ("the alarm watches another function", rule_sign_in_without_factor_alarm,
     lambda t: _alarm(t).update(Dimensions=[{"Name": "Function", "Value": {"Ref": function(t, VERIFY)[0]}}])),
    ("create loses LIMIT_KEY_SECRET_ARN", rule_limit_key_secret,
     lambda t: env(function(t, CREATE)[1]).pop("LIMIT_KEY_SECRET_ARN")),
    ("LIMIT_KEY_SECRET_ARN names no secret of the template", rule_limit_key_secret,
     lambda t: env(function(t, SENDER)[1]).update(LIMIT_KEY_SECRET_ARN={"Ref": "NotTheLimitKeySecret"})),
    ("verify may read every secret", rule_limit_key_secret,
     lambda t: _secret_statement(t, VERIFY)[1].update(Resource="*")),
    ("the sender cannot read the limit secret", rule_limit_key_secret,
     lambda t: (lambda statements, s: statements.remove(s))(*_secret_statement(t, SENDER))),
    ("another function gets the table but not the secret", rule_limit_key_secret,
     lambda t: props(function(t, PRE_AUTH)[1]).setdefault("Environment", {}).setdefault("Variables", {})
     .update(SMS_LIMIT_TABLE={"Ref": "SmsLimitTable"})),
    ("the sender gets CODE_FAILURES_PER_USER", rule_sender_environment,
     lambda t: env(function(t, SENDER)[1]).update(CODE_FAILURES_PER_USER="10/1h")),
]


def self_test(template):
    """Every mutation must be caught by its rule."""
    for description, rule, mutate in MUTATIONS:
        mutant = copy.deepcopy(template)
        try:
            mutate(mutant)
        except (AssertionError, KeyError, IndexError, LookupError, ValueError) as error:
            return f"could not make the bad template '{description}': {error!r}"
        if not rule(mutant):
            return f"{rule.__name__} did not catch: {description}"
    return None


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        template = json.load(f)
    failures = []
    for rule in RULES:
        try:
            problems = rule(template)
        except LookupError as error:
            problems = [str(error)]
        for problem in problems:
            failures.append(f"{rule.__name__}: {problem}")
    if failures:
        for line in failures:
            print("RULE: " + line, file=sys.stderr)
        sys.exit(1)
    error = self_test(template)
    if error:
        print("self-test: " + error, file=sys.stderr)
        sys.exit(1)
    print(f"self-test: {len(MUTATIONS)} bad variants of this template, each caught by its rule")
    print(f"{len(RULES)} security rules hold")


if __name__ == "__main__":
    main()
