"""Every number the validation of a submitted message uses, with the reason for its value.

A request that breaks one of these is refused as a whole (422) before anything is stored; the
README's table of limits quotes this module.
"""

from __future__ import annotations

# -- the request --------------------------------------------------------------------------------

# SPEC.md (compatible with genro-mail-proxy 0.6): a request with more messages is a 400.
MAX_MESSAGES_PER_REQUEST = 1000

# -- identifiers --------------------------------------------------------------------------------

# SPEC.md: 1..255; as UTF-8 that fits DynamoDB's 1024-byte sort key, and one header line.
MAX_ID_LENGTH = 255
# SPEC.md (compatible): batch_code is at most 64 characters.
MAX_BATCH_CODE_LENGTH = 64

# -- headers ------------------------------------------------------------------------------------

# RFC 5322 2.1.1: a line is at most 998 characters; no value needs more than one line's worth.
MAX_HEADER_VALUE_LENGTH = 998
# RFC 5322 2.1.1: a name with ": " must fit the recommended 78-character line, which can't fold.
MAX_HEADER_NAME_LENGTH = 76
# More custom headers than this is a mistake or abuse, never a legitimate message.
MAX_HEADERS = 50
# The Subject header is one line of at most 998 characters (RFC 5322 2.1.1).
MAX_SUBJECT_LENGTH = MAX_HEADER_VALUE_LENGTH

# -- addresses ----------------------------------------------------------------------------------

# RFC 5321 4.5.3.1.3: a path is at most 256 octets, angle brackets included.
MAX_ADDRESS_LENGTH = 254
# RFC 5321 4.5.3.1.1: the local part (before the @) is at most 64 octets.
MAX_LOCAL_PART_LENGTH = 64
# RFC 5321 4.5.3.1.2: the domain is at most 255 octets.
MAX_DOMAIN_LENGTH = 255
# RFC 1035 2.3.4: one DNS label is at most 63 octets.
MAX_DOMAIN_LABEL_LENGTH = 63
# A mailbox with its display name is written as one header value (RFC 5322 2.1.1).
MAX_MAILBOX_LENGTH = MAX_HEADER_VALUE_LENGTH
# To+Cc+Bcc: 5x the 100 RCPTs every SMTP server must take (RFC 5321 4.5.3.1.8); more is a list.
MAX_RECIPIENTS = 500

# -- body and attachments -----------------------------------------------------------------------

# API Gateway's payload limit (10 MB): a larger body can never arrive in one request.
MAX_BODY_BYTES = 10 * 1024 * 1024
# Bounds the MIME tree and the fetches one message costs; 50 files is already a large email.
MAX_ATTACHMENTS = 50
# The common file-system limit for one name (ext4, NTFS, APFS); SPEC.md says 1..255.
MAX_FILENAME_LENGTH = 255
# RFC 6838 4.2: type and subtype names are at most 127 characters each: 127 + "/" + 127.
MAX_MIME_TYPE_LENGTH = 255
# Inline (base64) content: the API Gateway payload limit again, counted in base64 text.
MAX_INLINE_ATTACHMENT_LENGTH = 10 * 1024 * 1024
# A URL, S3 URI or endpoint reference: 2048 is the de facto URL limit (S3 keys stop at 1024).
MAX_STORAGE_PATH_LENGTH = 2048
