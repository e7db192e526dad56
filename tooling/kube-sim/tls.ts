/**
 * A fixed, self-signed certificate for 127.0.0.1/localhost (valid 2020–2120) that exists only so
 * kubectl will talk to kube-sim: kubectl does not send bearer tokens over plain HTTP. It guards
 * nothing — the key is public by design; never use it outside loopback tests.
 */
export const SIM_CERT = `-----BEGIN CERTIFICATE-----
MIIBijCCATCgAwIBAgIBATAKBggqhkjOPQQDAjATMREwDwYDVQQDDAhrdWJlLXNp
bTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAwMFowEzERMA8GA1UEAwwI
a3ViZS1zaW0wWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAS6A4lkK4bbtpkDhHCz
exiY8nI69T8a7pFDgGhrNWe0Z71z6ZAsFof1Pfixd9DXrG0+XekvPHqKPdsMLF/V
yHDBo3MwcTAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwDwYDVR0TAQH/BAUw
AwEB/zAOBgNVHQ8BAf8EBAMCAoQwEwYDVR0lBAwwCgYIKwYBBQUHAwEwHQYDVR0O
BBYEFF4aoCpaIAQe+/97UgrKtwY4mbR2MAoGCCqGSM49BAMCA0gAMEUCIEohE8FN
j9uqajZIo4dYXiijsEcxMyCa+2ZIk8a6aNutAiEA0JthNh97grIb9KacwDf7f8ci
N+Pm+joRnJ/vmd+Hw5w=
-----END CERTIFICATE-----
`;

export const SIM_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+vMWN6tdMGE9OtSK
GHs84RLRlWjkQGLuow5yKcNJm22hRANCAAS6A4lkK4bbtpkDhHCzexiY8nI69T8a
7pFDgGhrNWe0Z71z6ZAsFof1Pfixd9DXrG0+XekvPHqKPdsMLF/VyHDB
-----END PRIVATE KEY-----
`;
