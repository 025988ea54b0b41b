/**
 * The commented example that `linkmux config init` writes. Every key is shown
 * with its default value, so the file parses to exactly the defaults (a unit
 * test holds it to that) and a user edits values instead of looking up names.
 * Optional sections without a default (auth, rules) are shown commented out.
 * No imports: the CLI loads this module at start-up, zod and yaml it must not.
 */

/** Where `linkmux config init` writes and where the daemon looks when no -c is given. */
export const DEFAULT_CONFIG_FILE = 'linkmux.yaml';

export const EXAMPLE_CONFIG = `# linkmux configuration: \`linkmux up -c linkmux.yaml\`
# Every value below is the default. Durations are in seconds; "500ms", "2s" and
# "1m" work too. Unknown keys are errors. Check the result with
# \`linkmux config show -c linkmux.yaml\`.

# Where the daemon listens. HOST:PORT, or false to turn a listener off.
# Anything but loopback (127.0.0.1, ::1) needs auth below, or allowOpen: true.
listen:
  socks: 127.0.0.1:1080      # SOCKS5 proxy (curl --socks5-hostname 127.0.0.1:1080)
  http: 127.0.0.1:8080       # HTTP proxy (curl -x http://127.0.0.1:8080)
  control: 127.0.0.1:9190    # status and /metrics; also a unix socket path
  allowOpen: false           # true: allow non-loopback listeners without auth

# Username and password required by both proxies when set (at most 255 bytes each).
# auth:
#   username: me
#   password: change-me

# The uplinks to use: interface names or addresses (see \`linkmux links\`), and
# SOCKS5 upstreams as socks5://user:pass@host:port#name (a router, \`ssh -D\`).
# With no interface named, every usable uplink is used.
links: []

# linkmux nodes on the LAN whose uplinks join the pool: their join tokens
# (\`linkmux node --init\` on each prints one). A token is a secret.
join: []

# Lend this machine's uplinks to the other machines (\`linkmux node\` runs only
# this; \`linkmux up --node\` or enabled: true runs it with the proxy).
node:
  enabled: false
  listen: lan:7300           # every private (LAN) address here; or HOST:PORT
  allow: []                  # private networks the node may relay to (CIDRs)
  # advertise: 192.168.1.20  # the address written into join tokens
  # name: office-pc          # default: the host name
  # stateDir: /var/lib/linkmux   # certificate, key and secret

# aria2-compatible JSON-RPC (\`linkmux up --rpc\`): AriaNg, Motrix-style front ends
# and browser extensions hand their downloads to linkmux, which pulls them over
# every link. Also served at /jsonrpc on the control address.
rpc:
  enabled: false
  listen: 127.0.0.1:6800     # aria2's port; false = only /jsonrpc on the control address
  # secret: change-me        # clients send "token:change-me"; needed beyond loopback
  #                          # and for web front ends on another origin (CORS)
  # dir: /home/me/Downloads  # default download directory (default ~/Downloads)
  maxConcurrentDownloads: 5
  connectionsPerLink: 1      # unless the client sends split / max-connection-per-server
  maxResults: 1000           # finished downloads kept in the list
  # stateDir: /var/lib/linkmux   # where the download list (rpc-session.json) lives

# A linkmux server of your own (a VPS): every connection goes through it over
# ONE kernel-MPTCP connection whose subflows use every uplink (root, Linux).
# token: the line \`linkmux server --init\` printed there (a secret). The
# other keys are for \`linkmux server\` itself.
server:
  # token: lmx1_…
  listen: "[::]:7400"        # every address; the token is always required
  allow: []                  # private networks the server may relay to (CIDRs)
  # advertise: vps.example.org   # the address written into its token
  # name: vps                # default: the host name
  # stateDir: /var/lib/linkmux

# How a socket is forced out of its link: auto, device (SO_BINDTODEVICE,
# Linux, root) or address (source address; on Linux needs \`linkmux route setup\`).
bind: auto

# Which link a new connection gets: adaptive (most spare measured capacity),
# round-robin, weighted, least-connections, sticky (same destination, same
# link) or hash (like ECMP).
policy: adaptive

# Relative weights for the weighted policy, by link id; unlisted links weigh 1.
weights: {}
#   eth0: 2
#   wlan0: 1

sticky:
  ttl: 600                   # seconds an unused destination keeps its link
  fallback: adaptive         # how new destinations are placed

connectTimeout: 10           # seconds per connect attempt through one link

failover:
  attempts: 3                # links tried per connection (the first one included)
  stagger: 2                 # seconds before the next link joins a slow connect

# Probes through every link. A link that drops everything is offline after at
# most interval + failThreshold x timeout (2.5 s with these values).
health:
  interval: 1                # seconds between probe rounds
  timeout: 0.5               # seconds before a probe counts as failed
  failThreshold: 3           # failed rounds in a row before offline
  riseThreshold: 2           # good rounds in a row before back online
  slowRtt: 0.5               # slower probes mark a link degraded (off while >= timeout)
  # targets: unset = TCP 443 of 1.1.1.1, 8.8.8.8, 9.9.9.9 and 208.67.222.222
  # plus dns:// of this system's public nameservers; any answer is enough. If
  # every link fails them at once, linkmux blames the targets, not the links:
  # the links stay in service as "unverified" and a warning asks you to set
  # targets reachable from here (tcp://HOST:PORT, dns://IP[:PORT], http(s) URLs):
  # targets:
  #   - tcp://192.0.2.10:443
  #   - dns://192.0.2.53

# Name lookups go out of the healthy links (never only the main route), to
# these servers first and then the system's (/etc/resolv.conf), racing across
# links; answers are cached for their TTL. /etc/hosts is honoured first.
dns:
  servers: []                # e.g. [1.1.1.1, "9.9.9.9:53", "[2606:4700::1111]:53"]
  system: true               # also ask the system's nameservers
  tryTimeout: 1              # seconds before another link or server joins a query
  timeout: 5                 # seconds a lookup may take in all (capped by connectTimeout)

# Destination rules, first match wins. Every field given in match must hold.
# action: direct, deny, link:<link id> or policy:<policy name>.
rules: []
#  - match: { domain: .bank.example }       # the domain and its subdomains
#    action: link:eth0                      # logins tied to one address
#  - match: { cidr: 10.0.0.0/8, port: 443 }
#    action: direct

# \`linkmux gateway\` (root, Linux router): every new LAN connection gets a WAN
# uplink by weighted round-robin over the online ones, kept for its lifetime.
gateway:
  lan: []                    # LAN interfaces, e.g. [eth0]
  uplinks: []                # e.g. - { interface: eth1 }   (next hop from its default route)
  #                                 - { interface: wwan0, gateway: 10.64.0.1, weight: 2 }
  rules: []                  # first match wins; action bypass or uplink:<name>
  #  - { match: { source: 192.168.1.50/32 }, action: uplink:eth1 }
  #  - { match: { destination: 192.0.2.0/24, port: 443 }, action: bypass }
  weightInterval: 5          # seconds between weight updates from measured capacity
  markBase: 19456            # 0x4c00: marks 0x4c01, 0x4c02, … (mask below)
  markMask: 65280            # 0xff00
  tableBase: 4200            # routing tables 4201, 4202, …
  priority: 4200             # ip rules 4200 … 4200 + 2 × uplinks

# Deadlines and caps of every front end (SOCKS5, HTTP proxy, node): what a
# hostile or broken client may hold. Caps at 0 derive from the file descriptor
# limit (raised to the hard limit at start): (limit - fdReserve) / 2 in all,
# half of that per client address. Over a cap: SOCKS5 closes, HTTP answers 503.
limits:
  handshakeTimeout: 10       # seconds from connect to a complete SOCKS5 request (node: TLS, then SOCKS5)
  headersTimeout: 10         # seconds for an HTTP request's headers, trickled or not (then 408)
  idleTimeout: 7200          # seconds without a byte before a tunnel is closed; 0 = never
  maxConnections: 0          # client connections at once, all front ends; 0 = derived
  maxConnectionsPerClient: 0 # from one address; 0 = half of maxConnections
  fdReserve: 0               # descriptors kept for control API and probes; 0 = limit / 8 (64-4096)
  loginLogInterval: 60       # seconds between log lines about one address's failed logins
  relayHold: 0.1             # longest wait of a one-way transfer's bytes, read in larger pieces (other bulk streams: 0.02); 0 = off

privateDirect: true          # loopback, LAN and link-local destinations go direct
drainTimeout: 10             # seconds open connections get on SIGINT/SIGTERM
log: info                    # debug, info, warn or error
`;
