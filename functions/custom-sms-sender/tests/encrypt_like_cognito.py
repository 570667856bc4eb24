"""Encrypts a secret the way Cognito does for a custom sender trigger, with
the Python AWS Encryption SDK (an implementation independent of aws-esdk):
KMS master key for ARN, format v1 suite AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384
(non-committing, hence FORBID_ENCRYPT_ALLOW_DECRYPT), encryption context
{"userpool-id": POOL}. Prints the base64 message. AWS_ENDPOINT_URL points
botocore at moto.

usage: encrypt_like_cognito.py KEY_ARN POOL_ID PLAINTEXT
"""
import base64
import sys

import aws_encryption_sdk
import botocore.session
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.identifiers import Algorithm

key_arn, pool_id, plaintext = sys.argv[1:4]
client = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
)
provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
    key_ids=[key_arn], botocore_session=botocore.session.Session()
)
ciphertext, _header = client.encrypt(
    source=plaintext.encode("utf-8"),
    key_provider=provider,
    encryption_context={"userpool-id": pool_id},
    algorithm=Algorithm.AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
)
print(base64.b64encode(ciphertext).decode("ascii"))
