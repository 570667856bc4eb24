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
it in the template. A statement under Fn::If counts in both branches, and
a resource under a Condition counts as present (the expansion keeps every
resource, with its Condition): a rule holds for every setting of the
parameters. The template's own Rules section is evaluated at the parameters'
defaults (scripts/check-template checks several sets of defaults).

The dashboard rules render its DashboardBody (Fn::Sub with Fn::If variables)
for every combination of the conditions that decide what it shows, and read
the metrics the functions emit from the Rust sources themselves (every
metrics::count call under functions/ and crates/), so they follow the code.
"""

import copy
import fnmatch
import itertools
import json
import re
import sys
from pathlib import Path

SENDER = "custom-sms-sender"
EMAIL_SENDER = "custom-email-sender"
SENDERS = (SENDER, EMAIL_SENDER)
CREATE = "create-auth-challenge"
VERIFY = "verify-auth-challenge"
PRE_AUTH = "pre-authentication"
ACCOUNT_CHANGE = "account-change"
# The functions that may send email through SES.
SES_SENDERS = (EMAIL_SENDER, ACCOUNT_CHANGE)

# The limits table's rights, per function, exactly (case-insensitive).
TABLE_ACTIONS = {
    SENDER: {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
             "dynamodb:GetItem", "dynamodb:ConditionCheckItem"},
    EMAIL_SENDER: {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                   "dynamodb:GetItem", "dynamodb:ConditionCheckItem"},
    CREATE: {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
             "dynamodb:GetItem", "dynamodb:ConditionCheckItem"},
    VERIFY: {"dynamodb:UpdateItem", "dynamodb:DeleteItem"},
    ACCOUNT_CHANGE: {"dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:ConditionCheckItem"},
}
VERIFY_LEADING_KEYS = {"codefail#*", "challenge#*"}
ACCOUNT_CHANGE_LEADING_KEYS = {"contact#*", "account_changes#*"}
# The account-change API's authorizer: the token in the Authorization header,
# and the scope every access token from Cognito's sign-in API has (an ID token
# of the same client has its id as aud, and no scope).
AUTHORIZATION_HEADER = "$request.header.Authorization"
ACCESS_TOKEN_SCOPES = ["aws.cognito.signin.user.admin"]
ACCOUNT_CHANGE_PARAMETER = "AccountChange"
DLQ_KEY_ACTIONS = {"kms:decrypt", "kms:generatedatakey"}
ACCOUNT_ROOT = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
POOLS_OF_THIS_ACCOUNT = "arn:${AWS::Partition}:cognito-idp:${AWS::Region}:${AWS::AccountId}:userpool/*"
ALARM_METRIC = ("CognitoMfaTriggers", "SignInWithoutFactor")
ALARM_PARAMETER = "SignInWithoutFactorAlarmThreshold"
NO_VALUE = {"Ref": "AWS::NoValue"}
# The limits table's variable (LIMIT_TABLE; its former name is still read).
TABLE_VARS = ("LIMIT_TABLE", "SMS_LIMIT_TABLE")
SES_IDENTITY = {"Ref": "SesIdentityArn"}
SES_CONFIGURATION_SET = {
    "Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${SesConfigurationSet}"}
ENCRYPTION_CONTEXT_KEY = "kms:EncryptionContext:userpool-id"
COGNITO = "cognito-idp.amazonaws.com"


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


def aliases(template):
    """Alias logical id -> (function logical id, alias name) of every AWS::Lambda::Alias on a function of the
    template (SAM's <Function>Alias<name> of AutoPublishAlias)."""
    lambdas = resources(template, "AWS::Lambda::Function")
    found = {}
    for name, body in resources(template, "AWS::Lambda::Alias").items():
        fn = target(props(body).get("FunctionName"))
        if fn in lambdas:
            found[name] = (fn, props(body).get("Name"))
    return found


def invoked_function(template, name):
    """The function logical id behind `name`: itself if a function, its function if an alias of the template."""
    if name in resources(template, "AWS::Lambda::Function"):
        return name
    return aliases(template).get(name, (None, None))[0]


def trigger_entries(template):
    """(trigger, condition, the ARN value the pool invokes) of each Lambda trigger in the pool's LambdaConfig."""
    _, pool = the_pool(template)
    found = []
    for trigger, value in sorted((props(pool).get("LambdaConfig") or {}).items()):
        if trigger == "KMSKeyID":
            continue
        for entry in branches(value):
            arn = entry.get("LambdaArn") if isinstance(entry, dict) and "LambdaArn" in entry else entry
            found.append((trigger, if_condition(value), arn))
    return found


# --------------------------------------------------------------- rules --
def leading_keys_problems(template, binary, leading_keys):
    """`binary`'s DynamoDB statements: only its TABLE_ACTIONS, each under exactly `leading_keys`."""
    statements, problems = function_statements(template, binary)
    relevant = [s for s in statements if touches(s, "dynamodb")]
    if not relevant:
        problems.append(f"{binary}: no DynamoDB statement")
    allowed = {a.lower() for a in TABLE_ACTIONS[binary]}
    for s in relevant:
        extra = [p for p in patterns(s)
                 if touches({"Effect": "Allow", "Action": p}, "dynamodb") and (not literal(p) or p not in allowed)]
        if extra:
            problems.append(f"{binary}: DynamoDB actions other than {sorted(TABLE_ACTIONS[binary])}: {extra}")
        keys = condition(s, "ForAllValues:StringLike", "dynamodb:LeadingKeys")
        if keys is None or set(keys) != leading_keys:
            problems.append(
                f"{binary}: a DynamoDB statement without ForAllValues:StringLike dynamodb:LeadingKeys "
                f"= {sorted(leading_keys)} (has {keys})")
    return problems


def rule_verify_leading_keys(template):
    """(a) verify-auth-challenge: only UpdateItem/DeleteItem, on codefail#/challenge# keys."""
    return leading_keys_problems(template, VERIFY, VERIFY_LEADING_KEYS)


def rule_account_change_leading_keys(template):
    """(a2) account-change: only UpdateItem/PutItem/ConditionCheckItem, on contact#/account_changes# keys."""
    return leading_keys_problems(template, ACCOUNT_CHANGE, ACCOUNT_CHANGE_LEADING_KEYS)


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


def sender_queues(template, binary):
    """The on-failure destinations of `binary`'s asynchronous invocation."""
    name, _ = function(template, binary)
    queues = set()
    for config in resources(template, "AWS::Lambda::EventInvokeConfig").values():
        if target(props(config).get("FunctionName")) == name:
            failure = ((props(config).get("DestinationConfig") or {}).get("OnFailure") or {})
            queues.add(target(failure.get("Destination")))
    queues.discard(None)
    return queues


def rule_dead_letter_key(template):
    """(c) each sender's dead-letter queue is under a template key used only by root and the senders whose queues use it."""
    problems = []
    keys = resources(template, "AWS::KMS::Key")
    users = {}   # key -> the roles of the senders whose queues use it
    for binary in SENDERS:
        sender_role = role_of(function(template, binary)[1])
        queues = sender_queues(template, binary)
        if not queues:
            problems.append(f"{binary}: no on-failure destination")
        for queue in sorted(queues):
            q = props(resources(template).get(queue, {}))
            if q.get("SqsManagedSseEnabled"):
                problems.append(f"{queue}: SqsManagedSseEnabled is set")
            key = target(q.get("KmsMasterKeyId"))
            if key not in keys:
                problems.append(f"{queue}: KmsMasterKeyId is not a key of the template ({q.get('KmsMasterKeyId')})")
                continue
            users.setdefault(key, set()).add(sender_role)
    for key, roles in sorted(users.items()):
        k = props(keys[key])
        if k.get("EnableKeyRotation") is not True:
            problems.append(f"{key}: key rotation is off")
        policy = statements_of(k.get("KeyPolicy"))
        if not any(s.get("Principal") == {"AWS": ACCOUNT_ROOT} for s in policy):
            problems.append(f"{key}: no account-root statement")
        named = set()
        for s in policy:
            if "NotPrincipal" in s:
                problems.append(f"{key}: a statement with NotPrincipal")
                continue
            principal = s.get("Principal")
            if principal == {"AWS": ACCOUNT_ROOT}:
                continue
            if isinstance(principal, dict) and set(principal) == {"AWS"} and len(as_list(principal["AWS"])) == 1 \
                    and target(as_list(principal["AWS"])[0]) in roles:
                role = target(as_list(principal["AWS"])[0])
                named.add(role)
                actions = set(patterns(s))
                if actions != DLQ_KEY_ACTIONS:
                    problems.append(f"{key}: {role} gets {sorted(actions)}, not {sorted(DLQ_KEY_ACTIONS)}")
                continue
            problems.append(f"{key}: names a principal other than the account root and "
                            f"{sorted(roles)}: {json.dumps(principal)}")
        for role in sorted(roles - named):
            problems.append(f"{key}: the sender's role {role} is not named")
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
    """(e) LIMIT_TABLE (or SMS_LIMIT_TABLE) comes with LIMIT_KEY_SECRET_ARN and GetSecretValue on that secret."""
    problems = []
    secrets = resources(template, "AWS::SecretsManager::Secret")
    users = 0
    for binary, (_, body) in sorted(functions(template).items()):
        variables = env(body)
        table_var = next((v for v in TABLE_VARS if v in variables), None)
        if table_var is None:
            continue
        users += 1
        value = variables.get("LIMIT_KEY_SECRET_ARN")
        refs = [target(v) for v in branches(value)]
        if value is None or len(refs) != 1 or refs[0] not in secrets or "Ref" not in branches(value)[0]:
            problems.append(f"{binary}: LIMIT_KEY_SECRET_ARN is not Ref of a secret of the template ({value})")
            continue
        secret = refs[0]
        table_condition = if_condition(variables[table_var])
        if if_condition(value) != table_condition:
            problems.append(f"{binary}: LIMIT_KEY_SECRET_ARN is given under {if_condition(value)}, "
                            f"{table_var} under {table_condition}")
        if secrets[secret].get("Condition") not in (None, table_condition):
            problems.append(f"{binary}: secret {secret} exists under {secrets[secret]['Condition']}, "
                            f"{table_var} under {table_condition}")
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
        problems.append(f"no function gets {' or '.join(TABLE_VARS)}")
    return problems


def rule_sender_environment(template):
    """custom-sms-sender gets no CODE_FAILURES_PER_USER (it never uses it)."""
    _, body = function(template, SENDER)
    if "CODE_FAILURES_PER_USER" in env(body):
        return [f"{SENDER}: gets CODE_FAILURES_PER_USER"]
    return []


def rule_email_sender_ses(template):
    """(f) custom-email-sender and account-change may only ses:SendEmail, on SesIdentityArn (and its configuration set), account-change only under the email sender's condition; nobody else uses SES."""
    problems = []
    email_condition = function(template, EMAIL_SENDER)[1].get("Condition")
    for sender in SES_SENDERS:
        statements, unresolved = function_statements(template, sender)
        problems += unresolved
        sends_from_identity = False
        for s in statements:
            if not touches(s, "ses"):
                continue
            if "NotResource" in s:
                problems.append(f"{sender}: an SES statement with NotResource: {json.dumps(s)}")
                continue
            extra = [p for p in patterns(s)
                     if touches({"Effect": "Allow", "Action": p}, "ses") and p != "ses:sendemail"]
            if extra:
                problems.append(f"{sender}: SES actions other than ses:SendEmail: {extra}")
            targets = [r for v in as_list(s.get("Resource")) for r in branches(v)]
            other = [r for r in targets if r not in (SES_IDENTITY, SES_CONFIGURATION_SET)]
            if other:
                problems.append(f"{sender}: SES on more than SesIdentityArn and its configuration set: "
                                f"{json.dumps(other)}")
            if SES_IDENTITY in targets and grants(s, "ses:SendEmail"):
                sends_from_identity = True
        if not sends_from_identity:
            problems.append(f"{sender}: no ses:SendEmail on Ref SesIdentityArn")
    # account-change's SES statements exist only where the email sender does
    # (SesIdentityArn is empty otherwise): each under Fn::If of its condition.
    for policy in as_list(props(resources(template).get(role_of(function(template, ACCOUNT_CHANGE)[1]), {}))
                          .get("Policies")):
        for raw in as_list(((policy or {}).get("PolicyDocument") or {}).get("Statement")):
            for s in branches(raw):
                if touches(s, "ses") and (email_condition is None or if_condition(raw) != email_condition):
                    problems.append(f"{ACCOUNT_CHANGE}: an SES statement not under Fn::If {email_condition}: "
                                    f"{json.dumps(raw)}")
    for binary, (_, body) in sorted(functions(template).items()):
        if binary in SES_SENDERS or role_of(body) is None:
            continue
        others, unresolved = role_statements(template, role_of(body))
        problems += unresolved
        if any(touches(s, "ses") for s in others):
            problems.append(f"{binary}: has SES rights (only {' and '.join(SES_SENDERS)} send email)")
    return problems


def the_pool(template):
    pools = resources(template, "AWS::Cognito::UserPool")
    if len(pools) != 1:
        raise LookupError(f"expected one user pool, found {sorted(pools)}")
    return next(iter(pools.items()))


def rule_sender_decrypt_context(template):
    """(g) each custom sender decrypts with the pool's KMSKeyID only, under the pool's encryption context; nobody else decrypts codes."""
    problems = []
    pool_name, pool = the_pool(template)
    key = target((props(pool).get("LambdaConfig") or {}).get("KMSKeyID"))
    if key not in resources(template, "AWS::KMS::Key"):
        return [f"{pool_name}: LambdaConfig.KMSKeyID is not a key of the template"]
    for binary, (_, body) in sorted(functions(template).items()):
        statements, unresolved = function_statements(template, binary)
        problems += unresolved
        decrypts = [s for s in statements if grants(s, "kms:Decrypt")]
        if binary not in SENDERS:
            if decrypts:
                problems.append(f"{binary}: may kms:Decrypt (only the custom senders decrypt codes)")
            continue
        if target(env(body).get("KEY_ARN")) != key:
            problems.append(f"{binary}: KEY_ARN is not the pool's KMSKeyID {key} ({env(body).get('KEY_ARN')})")
        if not decrypts:
            problems.append(f"{binary}: no kms:Decrypt statement")
        for s in decrypts:
            if "NotResource" in s or [target(r) for v in as_list(s.get("Resource")) for r in branches(v)] != [key]:
                problems.append(f"{binary}: kms:Decrypt on more than the pool's key {key}: {json.dumps(s)}")
            context = condition(s, "StringEquals", ENCRYPTION_CONTEXT_KEY)
            if context != [{"Ref": pool_name}]:
                problems.append(f"{binary}: kms:Decrypt without StringEquals {ENCRYPTION_CONTEXT_KEY} = "
                                f"Ref {pool_name} (has {context})")
            others = {op: keys for op, keys in (s.get("Condition") or {}).items()
                      if op != "StringEquals" and any(k.lower() == ENCRYPTION_CONTEXT_KEY.lower() for k in keys)}
            if others:
                problems.append(f"{binary}: the encryption context is also matched by {sorted(others)}")
    return problems


def rule_trigger_permissions(template):
    """(h) every function in the pool's LambdaConfig may be invoked by Cognito for this pool and account, under the trigger's condition, on exactly the ARN the pool names (its alias)."""
    problems = []
    pool_name, _ = the_pool(template)
    permissions = resources(template, "AWS::Lambda::Permission")
    triggers = 0
    for trigger, wanted, arn in trigger_entries(template):
        name = target(arn)
        triggers += 1
        if invoked_function(template, name) is None:
            problems.append(f"{trigger}: {json.dumps(arn)} is neither a function of the template nor an alias of one")
            continue
        if not any(
            target(props(p).get("FunctionName")) == name
            and props(p).get("Action") == "lambda:InvokeFunction"
            and props(p).get("Principal") == COGNITO
            and props(p).get("SourceArn") == {"Fn::GetAtt": [pool_name, "Arn"]}
            and props(p).get("SourceAccount") == {"Ref": "AWS::AccountId"}
            and p.get("Condition") in (None, wanted)
            for p in permissions.values()
        ):
            problems.append(f"{trigger}: {name} has no lambda:InvokeFunction permission for {COGNITO} with "
                            f"SourceArn {pool_name}.Arn and SourceAccount (under condition {wanted})")
    if triggers == 0:
        problems.append(f"{pool_name}: no trigger in LambdaConfig")
    return problems


def rule_value(node, params, conditions=None):
    """The value of a Rules or Conditions expression (Fn::And/Or/Not/Equals/Contains, Ref to a
    parameter), or of a value built from parameters and conditions (Fn::If, with `conditions`,
    the template's Conditions section)."""
    if isinstance(node, list):
        return [rule_value(n, params, conditions) for n in node]
    if isinstance(node, dict) and len(node) == 1:
        (key, arg), = node.items()
        if key == "Ref":
            if arg not in params:
                raise LookupError(f"Rules: Ref {arg} is not a parameter with a default")
            return params[arg]
        if key == "Condition" and conditions is not None:
            if arg not in conditions:
                raise LookupError(f"no condition {arg}")
            return rule_value(conditions[arg], params, conditions)
        if key == "Fn::If" and conditions is not None:
            name, yes, no = arg
            return rule_value(yes if rule_value({"Condition": name}, params, conditions) else no,
                              params, conditions)
        if key == "Fn::Equals":
            left, right = (rule_value(a, params, conditions) for a in arg)
            return left == right
        if key == "Fn::Not":
            return not rule_value(arg[0], params, conditions)
        if key == "Fn::And":
            return all(rule_value(a, params, conditions) for a in arg)
        if key == "Fn::Or":
            return any(rule_value(a, params, conditions) for a in arg)
        if key == "Fn::Contains":
            items, value = arg
            return rule_value(value, params, conditions) in rule_value(items, params, conditions)
        if key.startswith("Fn::"):
            raise LookupError(f"Rules: {key} is not evaluated by this checker")
    return node if isinstance(node, (str, bool)) else str(node)


def default_parameters(template):
    """Parameter name -> its default, as the string CloudFormation compares."""
    return {name: (("true" if spec["Default"] else "false") if isinstance(spec["Default"], bool)
                   else str(spec["Default"]))
            for name, spec in template.get("Parameters", {}).items() if "Default" in spec}


def rule_template_rules_accept_defaults(template):
    """(i) the template's Rules (what CloudFormation refuses) accept the parameters' defaults."""
    params = default_parameters(template)
    problems = []
    for name, rule in sorted((template.get("Rules") or {}).items()):
        if "RuleCondition" in rule and not rule_value(rule["RuleCondition"], params):
            continue
        for assertion in rule.get("Assertions", []):
            if not rule_value(assertion["Assert"], params):
                problems.append(f"Rules.{name} refuses the defaults: {assertion.get('AssertDescription')}")
    if not template.get("Rules"):
        problems.append("the template has no Rules")
    return problems


def api_operations(api):
    """(path, method, operation) of every operation in an AWS::ApiGatewayV2::Api's OpenAPI Body,
    through the Fn::If that SAM puts around the routes of a function under a Condition."""
    found = []
    body = props(api).get("Body") or {}
    for path, item in sorted((body.get("paths") or {}).items()):
        for entry in branches(item):
            for method, operation in sorted((entry or {}).items()):
                for op in branches(operation):
                    if isinstance(op, dict):
                        found.append((path, method, op))
    return found


def integration_targets(operation):
    """Logical ids an OpenAPI operation's integration URI names (Ref, GetAtt .Arn, or ${X} / ${X.Arn} in a Sub)."""
    integration = operation.get("x-amazon-apigateway-integration") or {}
    found = set()
    for uri in branches(integration.get("uri")):
        if target(uri):
            found.add(target(uri))
        sub = uri.get("Fn::Sub") if isinstance(uri, dict) else None
        text = sub[0] if isinstance(sub, list) else sub
        if isinstance(text, str):
            for variable in re.findall(r"\$\{([^!}][^}]*)\}", text):
                name, _, attr = variable.partition(".")
                if attr in ("", "Arn"):
                    found.add(name)
    return found


def integrates(template, operation, function_name):
    """Whether an OpenAPI operation's integration invokes the function `function_name` (itself or an alias)."""
    return any(invoked_function(template, t) == function_name for t in integration_targets(operation))


def rule_account_change_api(template):
    """(j) every route to account-change is behind a JWT authorizer: the Authorization header, issuer this pool, audience its app client(s), the access token's scope; no anonymous route."""
    problems = []
    pool_name, _ = the_pool(template)
    name, _ = function(template, ACCOUNT_CHANGE)
    clients = {lid for lid, body in resources(template, "AWS::Cognito::UserPoolClient").items()
               if target(props(body).get("UserPoolId")) == pool_name}
    issuer = {"Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${" + pool_name + "}"}
    routes = 0
    for api_name, api in sorted(resources(template, "AWS::ApiGatewayV2::Api").items()):
        schemes = ((props(api).get("Body") or {}).get("components") or {}).get("securitySchemes") or {}
        for path, method, op in api_operations(api):
            if not integrates(template, op, name):
                continue
            routes += 1
            where = f"{api_name} {method.upper()} {path}"
            security = op.get("security")
            if not isinstance(security, list) or not security:
                problems.append(f"{where}: no authorizer (security {json.dumps(security)})")
                continue
            for requirement in security:
                if not isinstance(requirement, dict) or len(requirement) != 1:
                    problems.append(f"{where}: a security alternative that is not one authorizer: "
                                    f"{json.dumps(requirement)}")
                    continue
                (scheme_name, scopes), = requirement.items()
                scheme = (schemes.get(scheme_name) or {}).get("x-amazon-apigateway-authorizer") or {}
                if scheme.get("type") != "jwt":
                    problems.append(f"{where}: {scheme_name} is not a JWT authorizer ({scheme.get('type')})")
                    continue
                if scheme.get("identitySource") != AUTHORIZATION_HEADER:
                    problems.append(f"{where}: {scheme_name} reads the token from {scheme.get('identitySource')}, "
                                    f"not {AUTHORIZATION_HEADER}")
                jwt = scheme.get("jwtConfiguration") or {}
                if jwt.get("issuer") != issuer:
                    problems.append(f"{where}: {scheme_name}'s issuer is not {json.dumps(issuer)} "
                                    f"({json.dumps(jwt.get('issuer'))})")
                audience = as_list(jwt.get("audience"))
                if not audience or any(target(a) not in clients or "Ref" not in a for a in audience):
                    problems.append(f"{where}: {scheme_name}'s audience is not Ref of {pool_name}'s app "
                                    f"client(s) {sorted(clients)} ({json.dumps(audience)})")
                if scopes != ACCESS_TOKEN_SCOPES:
                    problems.append(f"{where}: {scheme_name} requires scopes {scopes}, not "
                                    f"{ACCESS_TOKEN_SCOPES} (the access token's)")
    for kind in ("AWS::ApiGatewayV2::Integration", "AWS::ApiGatewayV2::Route"):
        for lid, body in sorted(resources(template, kind).items()):
            if name in json.dumps(props(body)):
                problems.append(f"{lid}: a {kind} outside an OpenAPI body names {name} (not checked here)")
    if routes == 0:
        problems.append(f"no HTTP API route invokes {ACCOUNT_CHANGE} ({name})")
    return problems


def rule_account_change_mode(template):
    """(k) the account-change function exists exactly with AccountChange=RecentSignIn, and both senders' ACCOUNT_CHANGE is AccountChange's value."""
    problems = []
    spec = template.get("Parameters", {}).get(ACCOUNT_CHANGE_PARAMETER) or {}
    values = [str(v) for v in spec.get("AllowedValues", [])]
    if "RecentSignIn" not in values:
        return [f"{ACCOUNT_CHANGE_PARAMETER}: no parameter with the value RecentSignIn ({values})"]
    conditions = template.get("Conditions") or {}
    _, account_change = function(template, ACCOUNT_CHANGE)
    senders = {}
    for binary in SENDERS:
        variables = env(function(template, binary)[1])
        if "ACCOUNT_CHANGE" in variables:
            senders[binary] = variables["ACCOUNT_CHANGE"]
        else:
            problems.append(f"{binary}: no ACCOUNT_CHANGE")
    for value in values:
        params = {**default_parameters(template), ACCOUNT_CHANGE_PARAMETER: value}
        exists = account_change.get("Condition") is None or rule_value(
            {"Condition": account_change["Condition"]}, params, conditions)
        if exists != (value == "RecentSignIn"):
            problems.append(f"with {ACCOUNT_CHANGE_PARAMETER}={value} the {ACCOUNT_CHANGE} function "
                            f"{'exists' if exists else 'does not exist'}")
        for binary, variable in sorted(senders.items()):
            got = rule_value(variable, params, conditions)
            if got != value:
                problems.append(f"{binary}: ACCOUNT_CHANGE={got!r} with {ACCOUNT_CHANGE_PARAMETER}={value}")
    return problems


# ------------------------------------------------------------ aliases --
def rule_triggers_use_alias(template):
    """(l) every trigger in the pool's LambdaConfig is Ref of its function's alias (never the function, a version or an ARN built by hand); every Cognito invoke permission names the alias the pool invokes for that function; every permission and HTTP API integration names an alias; the senders' retries and dead-letter queue (EventInvokeConfig) are on the alias Cognito invokes."""
    problems = []
    al = aliases(template)
    lambdas = resources(template, "AWS::Lambda::Function")
    invoked = {}   # function -> the alias the pool invokes
    entries = trigger_entries(template)
    for trigger, wanted, arn in entries:
        name = target(arn)
        if not (isinstance(arn, dict) and list(arn) == ["Ref"] and name in al):
            problems.append(f"{trigger}: {json.dumps(arn)} is not Ref of an alias of a function of the template")
            continue
        fn = al[name][0]
        if invoked.get(fn, name) != name:
            problems.append(f"{trigger}: the pool invokes {fn} through two aliases, {invoked[fn]} and {name}")
        invoked[fn] = name
        alias_condition = resources(template)[name].get("Condition")
        if alias_condition not in (None, wanted):
            problems.append(f"{trigger}: alias {name} exists under {alias_condition}, the trigger under {wanted}")
    if not entries:
        problems.append("no trigger in the pool's LambdaConfig")
    permitted = set()
    for lid, p in sorted(resources(template, "AWS::Lambda::Permission").items()):
        named = target(props(p).get("FunctionName"))
        if props(p).get("Principal") == COGNITO:
            permitted.add(named)
        if named in lambdas:
            problems.append(f"{lid}: names the function {named}, not its alias")
            continue
        if props(p).get("Principal") != COGNITO:
            continue
        if named not in al:
            problems.append(f"{lid}: a Cognito invoke permission on {json.dumps(props(p).get('FunctionName'))}, "
                            f"no alias of the template")
        elif invoked.get(al[named][0]) != named:
            problems.append(f"{lid}: names {named}, but the pool invokes {al[named][0]} through "
                            f"{invoked.get(al[named][0])}")
    for fn, alias in sorted(invoked.items()):
        if alias not in permitted:
            problems.append(f"{alias}: the pool invokes it, and no Cognito invoke permission names it")
    for api_name, api in sorted(resources(template, "AWS::ApiGatewayV2::Api").items()):
        for path, method, op in api_operations(api):
            for t in sorted(integration_targets(op)):
                if t in lambdas:
                    problems.append(f"{api_name} {method.upper()} {path}: integrates the function {t}, not its alias")
    for lid, config in sorted(resources(template, "AWS::Lambda::EventInvokeConfig").items()):
        fn = target(props(config).get("FunctionName"))
        if fn in invoked and props(config).get("Qualifier") != al[invoked[fn]][1]:
            problems.append(f"{lid}: on qualifier {props(config).get('Qualifier')!r}, but Cognito invokes "
                            f"{fn}'s alias {al[invoked[fn]][1]!r}: its retries and dead-letter queue would not apply")
    return problems


# ---------------------------------------------------------- dashboard --
METRICS_NAMESPACE = "CognitoMfaTriggers"
ROOT = Path(__file__).resolve().parent.parent
# What the dashboard must show for every function whose code emits it (the
# abuse and fail-open signals): each such function in a row or SEARCH.
WATCHED_METRICS = ("SmsSent", "SmsRefused", "SmsFailOpen", "EmailSent", "EmailRefused", "EmailFailOpen",
                   "SignInWithoutFactor", "ContactChangeRefused")
LAMBDA_METRICS = ("Invocations", "Errors", "Throttles", "Duration")
DURATION_STAT = "p99"
# A reference to a resource in a rendered Sub string (⟦Name⟧, ⟦Name.Attr⟧); ${!x} renders as ${x}.
MARK = re.compile("\u27e6([^\u27e7]*)\u27e7")
COUNT_CALL = "metrics::count("


def _skip_literal(text, i):
    """Index after the string literal (raw too), char literal, line comment or block comment at text[i], or i if
    none starts there (a lifetime's quote is no literal)."""
    raw = re.match(r'r(#*)"', text[i:i + 300]) if text[i] == "r" and (i == 0 or not (
        text[i - 1].isalnum() or text[i - 1] == "_")) else None
    if raw:
        end = text.find('"' + raw.group(1), i + len(raw.group(0)))
        return len(text) if end < 0 else end + 1 + len(raw.group(1))
    if text[i] == "'":
        char = re.match(r"'(?:\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:i + 12])
        return i + len(char.group(0)) if char else i
    if text[i] == '"':
        i += 1
        while i < len(text) and text[i] != '"':
            i += 2 if text[i] == "\\" else 1
        return i + 1
    if text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    if text.startswith("/*", i):
        end = text.find("*/", i + 2)
        return len(text) if end < 0 else end + 2
    return i


def _top_level(text, start=0):
    """Splits text[start:] at top-level commas until the bracket that closes the one opened before `start`:
    (parts, index of that closing bracket)."""
    depth, i, parts, begin = 0, start, [], start
    while i < len(text):
        j = _skip_literal(text, i)
        if j != i:
            i = j
            continue
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                parts.append(text[begin:i])
                return parts, i
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[begin:i])
            begin = i + 1
        i += 1
    raise ValueError("unbalanced brackets")


def _without_comments(text):
    """Rust `text` with each comment a space (literals kept as they are)."""
    out, i = [], 0
    while i < len(text):
        j = _skip_literal(text, i)
        if j != i and text[i] == "/":
            out.append(" ")
        elif j != i:
            out.append(text[i:j])
        else:
            out.append(text[i])
            j = i + 1
        i = j
    return "".join(out)


def metric_calls(text, constants):
    """[(metric, (dimension names...))] of each metrics::count(NAME, &[("Dim", value), ...]) in Rust `text`;
    NAME a string literal or a constant of `constants`. Raises ValueError on a call it cannot read."""
    text = _without_comments(text)
    found = []
    i = 0
    while i < len(text):
        j = _skip_literal(text, i)
        if j != i:
            i = j
            continue
        match = re.match(r"metrics::count\b", text[i:i + 15]) if i == 0 or not (
            text[i - 1].isalnum() or text[i - 1] == "_") else None
        i += 1
        if not match:
            continue
        at = i - 1 + match.end()
        if not text.startswith("(", at):
            raise ValueError(f"metrics::count used other than as a call at offset {at}")
        args, _ = _top_level(text, at + 1)
        args = [a.strip() for a in args if a.strip()]
        if len(args) != 2:
            raise ValueError(f"metrics::count with {len(args)} arguments: {text[at:at + 80]!r}")
        name, dims = args
        literal_name = re.fullmatch(r'"([A-Za-z0-9_]+)"', name)
        constant = re.fullmatch(r"(?:[A-Za-z_][A-Za-z0-9_]*::)*([A-Z_][A-Z0-9_]*)", name)
        if literal_name:
            metric = literal_name.group(1)
        elif constant and constant.group(1) in constants:
            metric = constants[constant.group(1)]
        else:
            raise ValueError(f"metrics::count with a metric name that is neither a literal nor a known &str "
                             f"constant: {name!r}")
        compact = re.sub(r"\s+", "", dims)
        if not (compact.startswith("&[") and compact.endswith("]")):
            raise ValueError(f"metrics::count dimensions not an &[...] slice: {dims!r}")
        inner = dims[dims.index("[") + 1:dims.rindex("]")]
        names = []
        for item in _top_level(inner + ")", 0)[0]:
            if not item.strip():
                continue
            dim = re.match(r'\s*\(\s*"([A-Za-z0-9_]+)"\s*,', item)
            if not dim:
                raise ValueError(f"metrics::count dimension without a literal name: {item.strip()!r}")
            names.append(dim.group(1))
        found.append((metric, tuple(names)))
    return found


def _str_constants(text):
    return dict(re.findall(r"\bconst\s+([A-Z_][A-Z0-9_]*)\s*:\s*&(?:'static\s+)?str\s*=\s*\"([^\"]*)\"\s*;", text))


_EMITTED = {}


def emitted_metrics(root=ROOT):
    """metric -> {binary: {dimension sets}} of every metrics::count call in the Rust sources (functions/<binary>/
    and crates/: a crate's calls count for every function, "*"). Each call emits [Function] and one
    [Function, Dim] per dimension (crates/lambda-host/src/metrics.rs)."""
    if root in _EMITTED:
        return _EMITTED[root]
    emitted = {}
    for top in ("functions", "crates"):
        for package in sorted((root / top).iterdir()):
            if not (package / "Cargo.toml").is_file():
                continue
            cargo = (package / "Cargo.toml").read_text(encoding="utf-8")
            package_name = re.search(r'(?m)^name\s*=\s*"([^"]+)"', cargo)
            owner = package_name.group(1) if top == "functions" and package_name else "*"
            sources = {path: path.read_text(encoding="utf-8") for path in sorted(package.rglob("*.rs"))
                       if "target" not in path.relative_to(package).parts}
            constants = {}
            for text in sources.values():
                constants.update(_str_constants(text))
            for path, text in sources.items():
                if "metrics::count" not in text:
                    continue
                try:
                    calls = metric_calls(text, constants)
                except ValueError as error:
                    raise LookupError(f"{path.relative_to(root)}: {error}") from None
                for metric, dims in calls:
                    sets = emitted.setdefault(metric, {}).setdefault(owner, set())
                    sets.add(frozenset({"Function"}))
                    sets.update(frozenset({"Function", d}) for d in dims)
    if not emitted:
        raise LookupError("no metrics::count call found in functions/ or crates/")
    _EMITTED[root] = emitted
    return emitted


def scanner_self_test():
    """The Rust scanner reads what it must (multi-line calls, constants, comments, parentheses in values) and
    refuses what it cannot read."""
    sample = '''
        pub const LOST: &str = "LostMetric";
        fn f<'a>(s: &'a str) -> &'a str {
            let _ = (s.trim_matches('"'), '\\'', r#"metrics::count("Raw", &[])"#);
            lambda_host::metrics::count("Plain", &[]); // metrics::count("Commented", &[("No", "x")])
            lambda_host::metrics::count(
                "Multi",
                &[("Reason", refusal.as_str()), ("Country", &format!("{}", c(1, 2)))],
            );
            lambda_host::metrics::count(LOST, &[("Channel", "a,b)")]);
            /* metrics::count("Block", &[]) */
        }'''
    got = metric_calls(sample, _str_constants(sample))
    want = [("Plain", ()), ("Multi", ("Reason", "Country")), ("LostMetric", ("Channel",))]
    if got != want:
        return f"the Rust scanner read {got}, expected {want}"
    for bad in ('metrics::count(name_of(x), &[]);', 'metrics::count("A", &[(dim, "x")]);',
                'use lambda_host::metrics::count as c;'):
        try:
            metric_calls(bad, {})
        except ValueError:
            continue
        return f"the Rust scanner accepted a call it cannot read: {bad}"
    return None


def _render(node, assignment):
    """An Fn::Sub (or a value inside one) as text: Fn::If by `assignment`, ${Local} by its value, ${X} and
    ${X.Attr} (and Ref / GetAtt values) as ⟦X⟧ / ⟦X.Attr⟧, ${!x} as ${x}."""
    if isinstance(node, str):
        return node
    if node == NO_VALUE:
        return ""
    if isinstance(node, dict) and len(node) == 1:
        (key, arg), = node.items()
        if key == "Fn::If":
            name, yes, no = arg
            return _render(yes if assignment[name] else no, assignment)
        if key == "Ref":
            return f"\u27e6{arg}\u27e7"
        if key == "Fn::GetAtt":
            return f"\u27e6{arg if isinstance(arg, str) else '.'.join(arg)}\u27e7"
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            values = {k: _render(v, assignment) for k, v in variables.items()}

            def one(match):
                key = match.group(1)
                if key.startswith("!"):
                    return "${" + key[1:] + "}"
                return values[key] if key in values else f"\u27e6{key}\u27e7"
            return re.sub(r"\$\{([^}]+)\}", one, text)
    raise LookupError(f"the dashboard body uses {json.dumps(node)[:80]}, which this checker does not render")


def _if_conditions(node):
    found = set()
    if isinstance(node, list):
        for n in node:
            found |= _if_conditions(n)
    elif isinstance(node, dict):
        for k, v in node.items():
            if k == "Fn::If":
                found.add(v[0])
            found |= _if_conditions(v)
    return found


def _named(node):
    """Resource names any Ref, GetAtt or ${X} in node names (all branches)."""
    names = set()
    if isinstance(node, list):
        for n in node:
            names |= _named(n)
    elif isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                names.add(v)
            elif k == "Fn::GetAtt":
                names.add((v.split(".", 1) if isinstance(v, str) else v)[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                names |= {m.split(".", 1)[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                if isinstance(v, list):
                    names |= _named(v[1])
            else:
                names |= _named(v)
    return names


def dashboard_renderings(template):
    """[(assignment, body document or None, problems)] of the template's dashboard, one per assignment of the
    conditions that decide what it shows (its Fn::If conditions and those of every resource it names, every
    function, alarm and sender queue), each taken as free: a body must be right in every combination."""
    boards = resources(template, "AWS::CloudWatch::Dashboard")
    if len(boards) != 1:
        raise LookupError(f"expected one AWS::CloudWatch::Dashboard, found {sorted(boards)}")
    board_name, board = next(iter(boards.items()))
    body = props(board).get("DashboardBody")
    everything = resources(template)
    shown = (set(resources(template, "AWS::Lambda::Function")) | set(resources(template, "AWS::CloudWatch::Alarm"))
             | set(resources(template, "AWS::SQS::Queue")) | {n for n in _named(body) if n in everything})
    names = sorted(_if_conditions(body) | {everything[n]["Condition"] for n in shown if everything[n].get("Condition")})
    if len(names) > 8:
        raise LookupError(f"{board_name}: {len(names)} conditions decide the dashboard; this checker renders at most 8")
    out = []
    for values in itertools.product((True, False), repeat=len(names)):
        assignment = dict(zip(names, values))
        where = ", ".join(f"{n}={'true' if v else 'false'}" for n, v in assignment.items()) or "always"
        problems = []
        if board.get("Condition") and not assignment.get(board["Condition"], True):
            continue
        text = _render(body, assignment)
        for ref in sorted(set(MARK.findall(text))):
            name = ref.split(".", 1)[0]
            condition_of = (everything.get(name) or {}).get("Condition")
            if condition_of and not assignment[condition_of]:
                problems.append(f"{board_name} ({where}): names {ref}, which does not exist when {condition_of} is false")
        try:
            document = json.loads(text)
        except ValueError as error:
            problems.append(f"{board_name} ({where}): the body is not JSON: {error}")
            document = None
        out.append((assignment, where, document, problems))
    return out


def dashboard_series(document):
    """(widget title, kind, details) of each series of each metric widget: kind "metric" with
    (namespace, name, {dimension: value}, stat), kind "expression" with the expression's text.
    The "." shorthand of a metric array repeats the previous array's item."""
    series = []
    for widget in document.get("widgets") or []:
        if not isinstance(widget, dict) or widget.get("type") != "metric":
            continue
        p = widget.get("properties") or {}
        title = p.get("title", "")
        previous = []
        for raw in p.get("metrics") or []:
            if not isinstance(raw, list) or not raw:
                series.append((title, "invalid", raw))
                continue
            if isinstance(raw[0], dict):
                series.append((title, "expression", raw[0].get("expression", "")))
                continue
            options = raw[-1] if isinstance(raw[-1], dict) else {}
            items = raw[:-1] if options is raw[-1] else list(raw)
            items = [previous[i] if v == "." and i < len(previous) else v for i, v in enumerate(items)]
            previous = items
            if len(items) < 2 or len(items) % 2:
                series.append((title, "invalid", raw))
                continue
            dims = dict(zip(items[2::2], items[3::2]))
            series.append((title, "metric", (items[0], items[1], dims, options.get("stat", p.get("stat", "Average")))))
    return series


SEARCH_CALL = re.compile(r"SEARCH\(\s*'([^']*)'")


def parse_search(expression):
    """(namespace, {dimension names}, [metric names], [Function values]) of a SEARCH's query, or None."""
    match = SEARCH_CALL.search(expression)
    if not match:
        return None
    query = match.group(1)
    schema = re.match(r"\s*\{([^}]*)\}", query)
    if not schema:
        return None
    parts = [p.strip() for p in schema.group(1).split(",")]
    return (parts[0], set(parts[1:]), re.findall(r'MetricName\s*=\s*"([^"]*)"', query),
            re.findall(r'\bFunction\s*=\s*"([^"]*)"', query))


def _marked(value):
    """X of a value that is exactly ⟦X⟧, else None."""
    match = MARK.fullmatch(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def rule_dashboard_metrics(template):
    """(m) every CognitoMfaTriggers metric the dashboard shows (a metric row or a SEARCH) is one some function of the template emits (its Rust sources' metrics::count calls), with exactly a dimension set it is emitted with, for the functions it names, and every SEARCH names this stack's functions; every AWS/Lambda series names a function of the template; the body is JSON and names only resources that exist, in every setting of its conditions."""
    error = scanner_self_test()
    if error:
        return [error]
    try:
        emitted = emitted_metrics()
        renderings = dashboard_renderings(template)
    except LookupError as problem:
        return [str(problem)]
    binaries = {name: binary for binary, (name, _) in functions(template).items()}
    lambdas = resources(template, "AWS::Lambda::Function")
    problems = []

    def check(where, metric, dims, fns):
        known = emitted.get(metric)
        if known is None:
            problems.append(f"{where}: no function emits {metric} (metrics::count in functions/ or crates/)")
            return
        for fn in fns:
            sets = known.get(binaries.get(fn), set()) | known.get("*", set())
            if not sets:
                problems.append(f"{where}: {fn} ({binaries.get(fn)}) does not emit {metric}")
            elif frozenset(dims) not in sets:
                problems.append(f"{where}: {fn} ({binaries.get(fn)}) emits {metric} with the dimension sets "
                                f"{sorted(sorted(s) for s in sets)}, not {sorted(dims)}")

    for _, where, document, rendering_problems in renderings:
        problems += rendering_problems
        if document is None:
            continue
        for title, kind, details in dashboard_series(document):
            at = f"{where}, widget {title!r}"
            if kind == "invalid":
                problems.append(f"{at}: a metric array the checker cannot read: {json.dumps(details)}")
            elif kind == "metric":
                namespace, metric, dims, _ = details
                if namespace == METRICS_NAMESPACE:
                    fn = _marked(dims.get("Function"))
                    if fn not in lambdas:
                        problems.append(f"{at}: {metric} not by the Function dimension of a function of the template "
                                        f"(dimensions {json.dumps(dims, ensure_ascii=False)}); every dimension set "
                                        f"it is emitted with has Function")
                        continue
                    check(at, metric, set(dims), [fn])
                elif namespace == "AWS/Lambda":
                    fn = _marked(dims.get("FunctionName"))
                    if set(dims) != {"FunctionName"} or fn not in lambdas:
                        problems.append(f"{at}: AWS/Lambda {metric} not by FunctionName of a function of the "
                                        f"template ({json.dumps(dims, ensure_ascii=False)})")
            elif kind == "expression" and METRICS_NAMESPACE in details:
                search = parse_search(details)
                if search is None or search[0] != METRICS_NAMESPACE or len(search[2]) != 1:
                    problems.append(f"{at}: an expression on {METRICS_NAMESPACE} that is not "
                                    f"SEARCH('{{{METRICS_NAMESPACE},Dims...}} MetricName=\"...\" ...'): {details}")
                    continue
                _, dims, (metric,), fn_values = search
                fns = [_marked(v) for v in fn_values]
                if not fns or any(fn not in lambdas for fn in fns):
                    problems.append(f"{at}: SEARCH for {metric} not limited to functions of this template "
                                    f"(Function=\"${{Name}}\" terms): {fn_values}")
                    continue
                check(at, metric, dims, fns)
    return problems


def rule_dashboard_coverage(template):
    """(n) in every setting of its conditions the dashboard shows, for each function that exists, its AWS/Lambda Invocations, Errors, Throttles and Duration (p99); every alarm of the template in an alarm widget; each sender's dead-letter queue depth; and each watched metric (sends, refusals, fail-opens, SignInWithoutFactor, ContactChangeRefused) for every function whose code emits it."""
    try:
        emitted = emitted_metrics()
        renderings = dashboard_renderings(template)
    except LookupError as problem:
        return [str(problem)]
    lambdas = resources(template, "AWS::Lambda::Function")
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    binaries = {name: binary for binary, (name, _) in functions(template).items()}
    queues = set()
    for binary in SENDERS:
        queues |= sender_queues(template, binary)
    problems = []

    def exists(name, assignment):
        c = resources(template)[name].get("Condition")
        return c is None or assignment.get(c, True)

    for assignment, where, document, _ in renderings:
        if document is None:
            continue   # rule (m) reports it
        lambda_series, shown, searched, depths = set(), set(), set(), set()
        for _, kind, details in dashboard_series(document):
            if kind == "metric":
                namespace, metric, dims, stat = details
                if namespace == "AWS/Lambda":
                    lambda_series.add((_marked(dims.get("FunctionName")), metric,
                                       stat if metric == "Duration" else None))
                elif namespace == METRICS_NAMESPACE:
                    shown.add((metric, _marked(dims.get("Function"))))
                elif namespace == "AWS/SQS" and metric == "ApproximateNumberOfMessagesVisible":
                    depths.add(_marked(dims.get("QueueName")))
            elif kind == "expression":
                search = parse_search(details)
                if search and search[0] == METRICS_NAMESPACE:
                    searched |= {(m, _marked(v)) for m in search[2] for v in search[3]}
        listed = set()
        for widget in document.get("widgets") or []:
            if isinstance(widget, dict) and widget.get("type") == "alarm":
                listed |= {_marked(a) for a in (widget.get("properties") or {}).get("alarms") or []}
        for fn in sorted(lambdas):
            if not exists(fn, assignment):
                continue
            for metric in LAMBDA_METRICS:
                stat = DURATION_STAT if metric == "Duration" else None
                if (fn, metric, stat) not in lambda_series:
                    problems.append(f"{where}: no AWS/Lambda {metric}{' ' + stat if stat else ''} of {fn}")
            for metric in WATCHED_METRICS:
                if binaries.get(fn) in (emitted.get(metric) or {}) and (metric, fn) not in shown | searched:
                    problems.append(f"{where}: {fn} emits {metric}, which the dashboard does not show for it")
        for alarm in sorted(alarms):
            if exists(alarm, assignment) and f"{alarm}.Arn" not in listed:
                problems.append(f"{where}: alarm {alarm} is in no alarm widget")
        for queue in sorted(queues):
            if exists(queue, assignment) and f"{queue}.QueueName" not in depths:
                problems.append(f"{where}: no ApproximateNumberOfMessagesVisible of dead-letter queue {queue}")
    return problems


RULES = [
    rule_verify_leading_keys,
    rule_account_change_leading_keys,
    rule_account_change_api,
    rule_account_change_mode,
    rule_table_actions,
    rule_sms_role_trust,
    rule_dead_letter_key,
    rule_sign_in_without_factor_alarm,
    rule_limit_key_secret,
    rule_sender_environment,
    rule_email_sender_ses,
    rule_sender_decrypt_context,
    rule_trigger_permissions,
    rule_triggers_use_alias,
    rule_dashboard_metrics,
    rule_dashboard_coverage,
    rule_template_rules_accept_defaults,
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


def _queue(t, binary=SENDER):
    name = function(t, binary)[0]
    for config in resources(t, "AWS::Lambda::EventInvokeConfig").values():
        if target(props(config)["FunctionName"]) == name:
            return props(resources(t)[target(props(config)["DestinationConfig"]["OnFailure"]["Destination"])])
    raise AssertionError(f"mutation: {binary} has no dead-letter queue")


def _key_policy(t, binary=SENDER):
    return props(resources(t)[target(_queue(t, binary)["KmsMasterKeyId"])])["KeyPolicy"]["Statement"]


def _drop_key_statement_of(t, binary):
    role = role_of(function(t, binary)[1])
    statements = _key_policy(t, binary)
    before = len(statements)
    statements[:] = [s for s in statements
                     if not any(target(as_list((b.get("Principal") or {}).get("AWS"))[0]) == role
                                for b in branches(s) if isinstance(b.get("Principal"), dict))]
    assert len(statements) < before, f"mutation: the key policy does not name {role}"


def _ses_statement(t):
    for policy in _role(t, EMAIL_SENDER)["Policies"]:
        for s in as_list(policy["PolicyDocument"]["Statement"]):
            if isinstance(s, dict) and touches(s, "ses"):
                return policy["PolicyDocument"]["Statement"], s
    raise AssertionError(f"mutation: {EMAIL_SENDER} has no SES statement")


def _decrypt_statement(t, binary):
    role = role_of(function(t, binary)[1])
    for body in resources(t, "AWS::IAM::Policy").values():
        if role in [target(r) for r in as_list(props(body).get("Roles"))]:
            for s in as_list(props(body)["PolicyDocument"]["Statement"]):
                if isinstance(s, dict) and grants(s, "kms:Decrypt"):
                    return s
    raise AssertionError(f"mutation: {binary} has no kms:Decrypt statement")


def _permission(t, binary):
    name = function(t, binary)[0]
    for lid, body in resources(t, "AWS::Lambda::Permission").items():
        if invoked_function(t, target(props(body).get("FunctionName"))) == name \
                and props(body).get("Principal") == COGNITO:
            return lid, body
    raise AssertionError(f"mutation: {binary} has no invoke permission")


def _account_change_operations(t):
    """(api, operation) of each route to account-change."""
    name = function(t, ACCOUNT_CHANGE)[0]
    found = [(api, op) for api in resources(t, "AWS::ApiGatewayV2::Api").values()
             for _, _, op in api_operations(api) if integrates(t, op, name)]
    assert found, f"mutation: no route invokes {ACCOUNT_CHANGE}"
    return found


def _jwt_authorizer(t):
    api, op = _account_change_operations(t)[0]
    scheme = next(iter(op["security"][0]))
    return props(api)["Body"]["components"]["securitySchemes"][scheme]["x-amazon-apigateway-authorizer"]


def _account_change_ses(t):
    """(statement list, index, the Fn::If element, the SES statement in it) of account-change's role."""
    for policy in _role(t, ACCOUNT_CHANGE)["Policies"]:
        statements = as_list(policy["PolicyDocument"]["Statement"])
        for i, raw in enumerate(statements):
            for s in branches(raw):
                if touches(s, "ses"):
                    return statements, i, raw, s
    raise AssertionError(f"mutation: {ACCOUNT_CHANGE} has no SES statement")


def _unwrap_account_change_ses(t):
    statements, i, _, s = _account_change_ses(t)
    statements[i] = s


def _set_defaults(t, **defaults):
    for name, value in defaults.items():
        t["Parameters"][name]["Default"] = value


# Valid email settings, the base of the Rules mutations: each then breaks one
# thing only, so the assertion that catches it is the one about that thing.
EMAIL_ON = dict(EmailFrom="noreply@example.com",
                SesIdentityArn="arn:aws:ses:us-east-1:123456789012:identity/example.com",
                SesConfigurationSet="", UserPoolTier="ESSENTIALS", MfaMethods="SMS,TOTP,EMAIL",
                MfaDefaultPreference="SMS", MfaConfiguration="OPTIONAL")


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


def _dashboard_sub(t):
    board = next(iter(resources(t, "AWS::CloudWatch::Dashboard").values()))
    return props(board)["DashboardBody"]["Fn::Sub"]


def _dashboard_edit(t, old, new, variable=None, count=1):
    """Replaces `old` (which must be there) by `new` in the dashboard body, or in the text of one of its Sub
    variables (the Fn::Sub in its Fn::If's true branch)."""
    sub = _dashboard_sub(t)
    if variable is None:
        assert old in sub[0], f"mutation: {old!r} not in the dashboard body"
        sub[0] = sub[0].replace(old, new, count)
        return
    branch = sub[1][variable]["Fn::If"][1]
    assert old in branch["Fn::Sub"], f"mutation: {old!r} not in the dashboard's {variable}"
    branch["Fn::Sub"] = branch["Fn::Sub"].replace(old, new, count)


def _drop_dashboard_variable(t, name):
    sub = _dashboard_sub(t)
    assert name in sub[1], f"mutation: no dashboard variable {name}"
    sub[1][name] = ""


def _lambda_config(t):
    return props(the_pool(t)[1])["LambdaConfig"]


def _api_permission(t):
    for body in resources(t, "AWS::Lambda::Permission").values():
        if props(body).get("Principal") == "apigateway.amazonaws.com":
            return props(body)
    raise AssertionError("mutation: no API Gateway permission")


def _version_of(t, binary):
    name = function(t, binary)[0]
    for lid, body in resources(t, "AWS::Lambda::Version").items():
        if target(props(body).get("FunctionName")) == name:
            return lid
    raise AssertionError(f"mutation: {binary} has no version")


def _event_invoke_config(t, binary):
    name = function(t, binary)[0]
    for body in resources(t, "AWS::Lambda::EventInvokeConfig").values():
        if target(props(body).get("FunctionName")) == name:
            return props(body)
    raise AssertionError(f"mutation: {binary} has no EventInvokeConfig")


def _unqualify_integration(t):
    name = function(t, ACCOUNT_CHANGE)[0]
    for _, op in _account_change_operations(t):
        integration = op["x-amazon-apigateway-integration"]
        uri = integration["uri"]
        sub = branches(uri)[0]["Fn::Sub"]
        alias = next(a for a, (fn, _) in aliases(t).items() if fn == name)
        assert "${" + alias + "}" in sub, f"mutation: the integration does not name {alias}"
        integration["uri"] = {"Fn::Sub": sub.replace("${" + alias + "}", "${" + name + ".Arn}")}
        return
    raise AssertionError("mutation: no account-change integration")


def _new_alarm(t):
    alarm = copy.deepcopy(next(iter(resources(t, "AWS::CloudWatch::Alarm").values())))
    t["Resources"]["AnotherAlarm"] = alarm


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
     .update(LIMIT_TABLE={"Ref": "SmsLimitTable"})),
    ("another function gets the table by its former name but not the secret", rule_limit_key_secret,
     lambda t: props(function(t, PRE_AUTH)[1]).setdefault("Environment", {}).setdefault("Variables", {})
     .update(SMS_LIMIT_TABLE={"Ref": "SmsLimitTable"})),
    ("the email sender cannot read the limit secret", rule_limit_key_secret,
     lambda t: (lambda statements, s: statements.remove(s))(*_secret_statement(t, EMAIL_SENDER))),
    ("the sender gets CODE_FAILURES_PER_USER", rule_sender_environment,
     lambda t: env(function(t, SENDER)[1]).update(CODE_FAILURES_PER_USER="10/1h")),
    # the email sender's table rights and dead-letter queue
    ("the email sender may Scan", rule_table_actions,
     lambda t: _table_statements(t, EMAIL_SENDER)[0]["Action"].append("dynamodb:Scan")),
    ("the email sender's queue under SQS-managed encryption", rule_dead_letter_key,
     lambda t: (_queue(t, EMAIL_SENDER).pop("KmsMasterKeyId"), _queue(t, EMAIL_SENDER).update(SqsManagedSseEnabled=True))),
    ("the key policy leaves out the email sender's role", rule_dead_letter_key,
     lambda t: _drop_key_statement_of(t, EMAIL_SENDER)),
    # (f) SES
    ("the email sender may send from any identity", rule_email_sender_ses,
     lambda t: _ses_statement(t)[1].update(Resource="*")),
    ("the email sender may send from every identity of the account", rule_email_sender_ses,
     lambda t: _ses_statement(t)[1].update(Resource={"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:"
                                                                "${AWS::AccountId}:identity/*"})),
    ("the email sender gets ses:*", rule_email_sender_ses,
     lambda t: _ses_statement(t)[1].update(Action="ses:*")),
    ("the email sender also gets SendRawEmail on every identity", rule_email_sender_ses,
     lambda t: _add_statement(t, EMAIL_SENDER, {"Effect": "Allow", "Action": "ses:SendRawEmail", "Resource": "*"})),
    ("the email sender loses its SES statement", rule_email_sender_ses,
     lambda t: (lambda statements, s: statements.remove(s))(*_ses_statement(t))),
    ("create-auth-challenge may send email", rule_email_sender_ses,
     lambda t: _add_statement(t, CREATE, {"Effect": "Allow", "Action": "ses:SendEmail", "Resource": SES_IDENTITY})),
    # (g) decrypt under the pool's encryption context
    ("the email sender's decrypt loses its encryption-context condition", rule_sender_decrypt_context,
     lambda t: _decrypt_statement(t, EMAIL_SENDER).pop("Condition")),
    ("the SMS sender's decrypt names another pool", rule_sender_decrypt_context,
     lambda t: _decrypt_statement(t, SENDER).update(Condition={"StringEquals": {
         ENCRYPTION_CONTEXT_KEY: "us-east-1_NotThisPool"}})),
    ("the email sender's decrypt matches any pool (StringLike *)", rule_sender_decrypt_context,
     lambda t: _decrypt_statement(t, EMAIL_SENDER).update(Condition={"StringLike": {ENCRYPTION_CONTEXT_KEY: "*"}})),
    ("the email sender may decrypt with any key", rule_sender_decrypt_context,
     lambda t: _decrypt_statement(t, EMAIL_SENDER).update(Resource="*")),
    ("the email sender's KEY_ARN is another key", rule_sender_decrypt_context,
     lambda t: env(function(t, EMAIL_SENDER)[1]).update(KEY_ARN={"Fn::GetAtt": ["DeadLetterQueueKey", "Arn"]})),
    ("pre-authentication may decrypt codes", rule_sender_decrypt_context,
     lambda t: _add_statement(t, PRE_AUTH, {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})),
    # (h) every trigger has its invoke permission
    ("the email sender's invoke permission is gone", rule_trigger_permissions,
     lambda t: t["Resources"].pop(_permission(t, EMAIL_SENDER)[0])),
    ("the SMS sender's permission loses SourceArn", rule_trigger_permissions,
     lambda t: props(_permission(t, SENDER)[1]).pop("SourceArn")),
    ("pre-sign-up's permission names another pool", rule_trigger_permissions,
     lambda t: props(_permission(t, "pre-sign-up")[1]).update(
         SourceArn="arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Other")),
    ("the email sender's permission exists under another condition", rule_trigger_permissions,
     lambda t: _permission(t, EMAIL_SENDER)[1].update(Condition="HasAlarmTopic")),
    ("verify's permission is for another principal", rule_trigger_permissions,
     lambda t: props(_permission(t, VERIFY)[1]).update(Principal="lambda.amazonaws.com")),
    ("the email sender loses PutItem (it holds a refused change)", rule_table_actions,
     lambda t: _table_statements(t, EMAIL_SENDER)[0]["Action"].remove("dynamodb:PutItem")),
    # (a2) account-change's table rights
    ("account-change may also DeleteItem", rule_account_change_leading_keys,
     lambda t: _table_statements(t, ACCOUNT_CHANGE)[0]["Action"].append("dynamodb:DeleteItem")),
    ("account-change's table statement loses its condition", rule_account_change_leading_keys,
     lambda t: _table_statements(t, ACCOUNT_CHANGE)[0].pop("Condition")),
    ("account-change may also touch sent# keys", rule_account_change_leading_keys,
     lambda t: _table_statements(t, ACCOUNT_CHANGE)[0]["Condition"]["ForAllValues:StringLike"]
     ["dynamodb:LeadingKeys"].append("sent#*")),
    ("account-change may GetItem", rule_table_actions,
     lambda t: _table_statements(t, ACCOUNT_CHANGE)[0]["Action"].append("dynamodb:GetItem")),
    # (j) the account-change API's authorizer
    ("a route to account-change without an authorizer (Authorizer: NONE)", rule_account_change_api,
     lambda t: _account_change_operations(t)[-1][1].pop("security")),
    ("a route to account-change with an anonymous alternative", rule_account_change_api,
     lambda t: _account_change_operations(t)[0][1]["security"].append({})),
    ("the authorizer trusts another pool", rule_account_change_api,
     lambda t: _jwt_authorizer(t)["jwtConfiguration"].update(
         issuer="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other")),
    ("the authorizer's audience is a literal client id", rule_account_change_api,
     lambda t: _jwt_authorizer(t)["jwtConfiguration"].update(audience=["1example23456789abcdefghij"])),
    ("the authorizer reads the token from the query string", rule_account_change_api,
     lambda t: _jwt_authorizer(t).update(identitySource="$request.querystring.token")),
    ("a route accepts ID tokens (no scope)", rule_account_change_api,
     lambda t: (lambda op: op.update(security=[{next(iter(op["security"][0])): []}]))(
         _account_change_operations(t)[1][1])),
    ("a Lambda authorizer instead of the JWT one", rule_account_change_api,
     lambda t: _jwt_authorizer(t).update(type="request")),
    # (k) the senders follow AccountChange
    ("the SMS sender loses ACCOUNT_CHANGE", rule_account_change_mode,
     lambda t: env(function(t, SENDER)[1]).pop("ACCOUNT_CHANGE")),
    ("the email sender's ACCOUNT_CHANGE is fixed to AccessToken", rule_account_change_mode,
     lambda t: env(function(t, EMAIL_SENDER)[1]).update(ACCOUNT_CHANGE="AccessToken")),
    ("the SMS sender holds changes only with an alarm topic", rule_account_change_mode,
     lambda t: env(function(t, SENDER)[1]).update(ACCOUNT_CHANGE={"Fn::If": [
         "HasAlarmTopic", {"Ref": ACCOUNT_CHANGE_PARAMETER}, "AccessToken"]})),
    ("the account-change function exists with AccessToken too", rule_account_change_mode,
     lambda t: function(t, ACCOUNT_CHANGE)[1].pop("Condition")),
    # (f) account-change's SES rights
    ("account-change may send from any identity", rule_email_sender_ses,
     lambda t: _account_change_ses(t)[3].update(Resource="*")),
    ("account-change's SES statement is there without EmailFrom", rule_email_sender_ses,
     _unwrap_account_change_ses),
    # (l) the triggers, their permissions and the API invoke the alias `live`
    ("PreSignUp invokes the function, not its alias", rule_triggers_use_alias,
     lambda t: _lambda_config(t).update(PreSignUp={"Fn::GetAtt": [function(t, "pre-sign-up")[0], "Arn"]})),
    ("the email sender's LambdaArn is the unqualified function", rule_triggers_use_alias,
     lambda t: _lambda_config(t)["CustomEmailSender"]["Fn::If"][1].update(
         LambdaArn={"Fn::GetAtt": [function(t, EMAIL_SENDER)[0], "Arn"]})),
    ("a trigger names a version, not the alias", rule_triggers_use_alias,
     lambda t: _lambda_config(t).update(PreAuthentication={"Ref": _version_of(t, PRE_AUTH)})),
    ("a trigger qualified by hand (${Function.Arn}:live), with no dependency on the alias", rule_triggers_use_alias,
     lambda t: _lambda_config(t).update(DefineAuthChallenge={"Fn::Sub": "${" + function(
         t, "define-auth-challenge")[0] + ".Arn}:live"})),
    ("the SMS sender's Cognito permission is on the function, not the alias", rule_triggers_use_alias,
     lambda t: props(_permission(t, SENDER)[1]).update(
         FunctionName={"Fn::GetAtt": [function(t, SENDER)[0], "Arn"]})),
    ("pre-authentication's permission names another function's alias", rule_triggers_use_alias,
     lambda t: props(_permission(t, PRE_AUTH)[1]).update(FunctionName=props(_permission(t, VERIFY)[1])["FunctionName"])),
    ("the SMS sender's retries and dead-letter queue are configured on $LATEST", rule_triggers_use_alias,
     lambda t: _event_invoke_config(t, SENDER).update(Qualifier="$LATEST")),
    ("an account-change route integrates the unqualified function", rule_triggers_use_alias, _unqualify_integration),
    ("API Gateway's permission is on the unqualified function", rule_triggers_use_alias,
     lambda t: _api_permission(t).update(FunctionName={"Ref": function(t, ACCOUNT_CHANGE)[0]})),
    # (m) the dashboard's metrics are emitted, as queried
    ("a row shows a metric no function emits", rule_dashboard_metrics,
     lambda t: _dashboard_edit(t, '"SmsFailOpen", "Function", "${VerifyAuthChallengeFunction}"',
                               '"SmsFailedOpen", "Function", "${VerifyAuthChallengeFunction}"')),
    ("a SEARCH leaves out the Function dimension ({CognitoMfaTriggers,Reason})", rule_dashboard_metrics,
     lambda t: _dashboard_edit(t, '{CognitoMfaTriggers,Function,Reason} MetricName=\\"SmsRefused\\"',
                               '{CognitoMfaTriggers,Reason} MetricName=\\"SmsRefused\\"')),
    ("SignInWithoutFactor searched by Country, a dimension it is not emitted with", rule_dashboard_metrics,
     lambda t: _dashboard_edit(t, '{CognitoMfaTriggers,Function,Reason} MetricName=\\"SignInWithoutFactor\\"',
                               '{CognitoMfaTriggers,Country,Function} MetricName=\\"SignInWithoutFactor\\"')),
    ("email sent searched by Country (EmailSent has no Country)", rule_dashboard_metrics,
     lambda t: _dashboard_edit(
         t, '["CognitoMfaTriggers", "EmailSent", "Function", "${CustomEmailSenderFunction}", {"label": "EmailSent"}]',
         '[{"id": "e", "expression": "SEARCH(\'{CognitoMfaTriggers,Country,Function} MetricName=\\"EmailSent\\" '
         'Function=\\"${CustomEmailSenderFunction}\\"\', \'Sum\', 300)"}]', variable="EmailSenderWidgets")),
    ("a fail-open row without its Function dimension", rule_dashboard_metrics,
     lambda t: _dashboard_edit(t, '"SmsFailOpen", "Function", "${CustomSmsSenderFunction}", ', '"SmsFailOpen", ')),
    ("SmsSent shown for pre-authentication, which sends none", rule_dashboard_metrics,
     lambda t: _dashboard_edit(t, '"SignInWithoutFactor", "Function", "${PreAuthenticationFunction}"',
                               '"SmsSent", "Function", "${PreAuthenticationFunction}"')),
    ("a SEARCH over every stack's functions (no Function term)", rule_dashboard_metrics,
     lambda t: _dashboard_edit(t, ' Function=\\"${PreAuthenticationFunction}\\"\'', "'")),
    ("an AWS/Lambda series names a function by a literal name", rule_dashboard_metrics,
     lambda t: _dashboard_edit(t, '"FunctionName", "${PreSignUpFunction}"]', '"FunctionName", "pre-sign-up"]')),
    ("an AWS/Lambda series names the alias, not the function", rule_dashboard_metrics,
     lambda t: _dashboard_edit(t, '"FunctionName", "${PreSignUpFunction}"]',
                               '"FunctionName", "${PreSignUpFunctionAliaslive}"]')),
    ("the body is not JSON when the email sender exists (a comma lost)", rule_dashboard_metrics,
     lambda t: _dashboard_edit(t, ",\n", "\n", variable="EmailSenderLambda")),
    ("the email sender's dead-letter queue named outside its Fn::If", rule_dashboard_metrics,
     lambda t: _dashboard_edit(t, '${EmailSenderDeadLetterQueue}',
                               ', ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", '
                               '"${CustomEmailSenderDeadLetterQueue.QueueName}"]')),
    ("no dashboard", rule_dashboard_metrics,
     lambda t: [t["Resources"].pop(n) for n in list(resources(t, "AWS::CloudWatch::Dashboard"))]),
    # (n) the dashboard shows every function, alarm, queue and watched metric
    ("the account-change function's Lambda widget left out", rule_dashboard_coverage,
     lambda t: _drop_dashboard_variable(t, "AccountChangeLambda")),
    ("an alarm left out of the alarm widget", rule_dashboard_coverage,
     lambda t: _dashboard_edit(t, '"${PreSignUpErrorsAlarm.Arn}",', "")),
    ("a new alarm the dashboard does not list", rule_dashboard_coverage, _new_alarm),
    ("pre-authentication's duration as the average", rule_dashboard_coverage,
     lambda t: _dashboard_edit(t, '"${PreAuthenticationFunction}", {"stat": "p99"',
                               '"${PreAuthenticationFunction}", {"stat": "Average"')),
    ("create-auth-challenge's throttles left out", rule_dashboard_coverage,
     lambda t: _dashboard_edit(t, '["AWS/Lambda", "Throttles", "FunctionName", "${CreateAuthChallengeFunction}"],', "")),
    ("the email sender's dead-letter queue left out", rule_dashboard_coverage,
     lambda t: _drop_dashboard_variable(t, "EmailSenderDeadLetterQueue")),
    ("verify-auth-challenge's fail-open row shows another function", rule_dashboard_coverage,
     lambda t: _dashboard_edit(t, '"${VerifyAuthChallengeFunction}", {"label"', '"${PreAuthenticationFunction}", {"label"')),
    ("the email sender's ContactChangeRefused left out", rule_dashboard_coverage,
     lambda t: _drop_dashboard_variable(t, "EmailSenderContactChangeRefused")),
    # (i) the template's Rules refuse what Cognito would
    ("AccountChange RecentSignIn with PhoneNumberChange Immediate", rule_template_rules_accept_defaults,
     lambda t: _set_defaults(t, AccountChange="RecentSignIn", PhoneNumberChange="Immediate")),
    ("EMAIL MFA without EmailFrom", rule_template_rules_accept_defaults,
     lambda t: _set_defaults(t, **{**EMAIL_ON, "EmailFrom": "", "SesIdentityArn": ""})),
    ("EMAIL MFA on the LITE tier", rule_template_rules_accept_defaults,
     lambda t: _set_defaults(t, **{**EMAIL_ON, "UserPoolTier": "LITE"})),
    ("EmailFrom without SesIdentityArn", rule_template_rules_accept_defaults,
     lambda t: _set_defaults(t, **{**EMAIL_ON, "SesIdentityArn": "", "MfaMethods": "SMS,TOTP"})),
    ("a configuration set without EmailFrom", rule_template_rules_accept_defaults,
     lambda t: _set_defaults(t, **{**EMAIL_ON, "EmailFrom": "", "SesIdentityArn": "", "MfaMethods": "SMS,TOTP",
                                   "SesConfigurationSet": "cognito"})),
    ("default preference EMAIL without EMAIL in MfaMethods", rule_template_rules_accept_defaults,
     lambda t: _set_defaults(t, **{**EMAIL_ON, "MfaMethods": "SMS,TOTP", "MfaDefaultPreference": "EMAIL"})),
    ("default preference SMS in a TOTP,EMAIL pool", rule_template_rules_accept_defaults,
     lambda t: _set_defaults(t, **{**EMAIL_ON, "MfaMethods": "TOTP,EMAIL"})),
    ("NOMFA as the default of an ON pool", rule_template_rules_accept_defaults,
     lambda t: _set_defaults(t, **{**EMAIL_ON, "MfaConfiguration": "ON", "MfaDefaultPreference": "NOMFA"})),
]


# Good variants, which their rule must accept (so that the mutations above are
# caught for what they break, not for the base they start from).
CONTROLS = [
    ("email MFA with SES on ESSENTIALS", rule_template_rules_accept_defaults,
     lambda t: _set_defaults(t, **EMAIL_ON)),
    ("EMAIL only, the default EMAIL, an ON pool on PLUS with a configuration set",
     rule_template_rules_accept_defaults,
     lambda t: _set_defaults(t, **{**EMAIL_ON, "MfaMethods": "EMAIL", "MfaDefaultPreference": "EMAIL",
                                   "MfaConfiguration": "ON", "UserPoolTier": "PLUS",
                                   "SesConfigurationSet": "cognito"})),
    ("the email sender on LITE without email MFA", rule_template_rules_accept_defaults,
     lambda t: _set_defaults(t, **{**EMAIL_ON, "MfaMethods": "TOTP", "MfaDefaultPreference": "TOTP",
                                   "UserPoolTier": "LITE"})),
    ("AccountChange AccessToken with PhoneNumberChange Immediate (Cognito's behaviour)",
     rule_template_rules_accept_defaults,
     lambda t: _set_defaults(t, AccountChange="AccessToken", PhoneNumberChange="Immediate")),
    ("a SEARCH naming its dimensions in another order", rule_dashboard_metrics,
     lambda t: _dashboard_edit(t, '{CognitoMfaTriggers,Function,Reason} MetricName=\\"SmsRefused\\"',
                               '{CognitoMfaTriggers,Reason,Function} MetricName=\\"SmsRefused\\"')),
    ("a metric array with the \".\" shorthand", rule_dashboard_metrics,
     lambda t: _dashboard_edit(t, '["AWS/Lambda", "Errors", "FunctionName", "${PreSignUpFunction}"]',
                               '[".", "Errors", ".", "."]')),
]


def self_test(template):
    """Every mutation must be caught by its rule; every control must pass it."""
    for description, rule, mutate in CONTROLS:
        good = copy.deepcopy(template)
        mutate(good)
        if rule(good):
            return f"{rule.__name__} refuses a good variant '{description}': {rule(good)}"
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
    print(f"self-test: {len(MUTATIONS)} bad variants of this template, each caught by its rule; "
          f"{len(CONTROLS)} good ones accepted")
    print(f"{len(RULES)} security rules hold")


if __name__ == "__main__":
    main()
