"""Word lists for the generated catalogue of ``bench/catalog_scale.py``.

Services grouped by domain, each domain with its own objects, plus actions (with the verbs
people use for them), qualifiers and purposes. Every block is one (service, object, action,
qualifier) combination, so names and descriptions share words the way a real catalogue does:
many blocks say "create", "invoice" or "Stripe", few say all three.
"""

from __future__ import annotations

from blockpilot.blocks.base import BlockCategory

# domain -> (category, services, objects, purposes)
DOMAINS: dict[str, tuple[BlockCategory, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "crm": (
        BlockCategory.CRM,
        ("Salesforce", "HubSpot", "Pipedrive", "Zoho CRM", "Close", "Copper", "Freshsales",
         "Attio", "Insightly", "Capsule", "Keap", "Nimble"),
        ("contact", "lead", "deal", "account", "opportunity", "pipeline stage", "note",
         "company", "activity", "sales quote"),
        ("sales follow-ups", "keeping the customer record current", "pipeline reviews",
         "lead qualification"),
    ),
    "support": (
        BlockCategory.COMMUNICATION,
        ("Zendesk", "Freshdesk", "Intercom", "Help Scout", "Front", "Kustomer", "Gorgias",
         "ServiceNow", "Zoho Desk", "HappyFox"),
        ("ticket", "conversation", "agent", "macro", "help center article", "customer",
         "satisfaction rating", "ticket tag", "queue"),
        ("customer support triage", "escalations", "service level reporting",
         "answering customers faster"),
    ),
    "payments": (
        BlockCategory.DATA,
        ("Stripe", "PayPal", "Square", "Adyen", "Braintree", "Paddle", "Chargebee", "Recurly",
         "Mollie", "Razorpay", "GoCardless", "Checkout.com"),
        ("invoice", "payment", "refund", "subscription", "customer", "charge", "coupon",
         "payout", "price", "dispute"),
        ("billing", "revenue reconciliation", "dunning", "checkout flows"),
    ),
    "accounting": (
        BlockCategory.DATA,
        ("QuickBooks", "Xero", "FreshBooks", "Sage", "NetSuite", "Wave", "Zoho Books",
         "MYOB", "Bill.com"),
        ("bill", "expense", "journal entry", "vendor", "ledger account", "tax rate",
         "purchase order", "receipt", "credit note"),
        ("month-end close", "bookkeeping", "expense reports", "audits"),
    ),
    "devops": (
        BlockCategory.DEVELOPER_TOOLS,
        ("GitLab", "Bitbucket", "CircleCI", "Jenkins", "PagerDuty", "Datadog", "Sentry",
         "Opsgenie", "Grafana", "Vercel", "Netlify", "Heroku", "Buildkite", "Terraform Cloud"),
        ("pipeline", "deployment", "incident", "alert", "monitor", "build", "release",
         "environment variable", "service", "log stream", "merge request"),
        ("on-call response", "continuous delivery", "release management", "observability"),
    ),
    "storage": (
        BlockCategory.DATA,
        ("Dropbox", "Box", "OneDrive", "Amazon S3", "Google Cloud Storage", "Backblaze B2",
         "Wasabi", "pCloud", "MEGA"),
        ("file", "folder", "bucket", "shared link", "object", "file version", "permission"),
        ("backups", "sharing files with a team", "archiving", "document retention"),
    ),
    "marketing": (
        BlockCategory.MARKETING,
        ("Mailchimp", "SendGrid", "Klaviyo", "Brevo", "ActiveCampaign", "ConvertKit",
         "Customer.io", "Iterable", "Marketo", "Braze"),
        ("campaign", "audience", "subscriber", "segment", "email template", "mailing list",
         "automation", "newsletter", "unsubscribe"),
        ("email marketing", "audience growth", "drip campaigns", "newsletters"),
    ),
    "ecommerce": (
        BlockCategory.DATA,
        ("Shopify", "WooCommerce", "BigCommerce", "Magento", "Etsy", "Amazon Seller Central",
         "eBay", "Squarespace Commerce", "Wix Stores"),
        ("order", "product", "inventory level", "fulfillment", "cart", "collection",
         "product variant", "shipping rate", "discount code", "return"),
        ("online store operations", "inventory management", "order fulfilment",
         "merchandising"),
    ),
    "hr": (
        BlockCategory.PRODUCTIVITY,
        ("BambooHR", "Workday", "Gusto", "Personio", "Rippling", "Greenhouse", "Lever",
         "Deel", "HiBob", "Ashby"),
        ("employee", "time off request", "payroll run", "candidate", "job posting",
         "interview", "job offer", "department", "onboarding checklist"),
        ("hiring", "onboarding new staff", "people operations", "payroll"),
    ),
    "projects": (
        BlockCategory.ISSUE_TRACKING,
        ("Asana", "Trello", "Monday.com", "ClickUp", "Basecamp", "Wrike", "Smartsheet",
         "Shortcut", "YouTrack", "Height"),
        ("task", "project", "board", "card", "milestone", "sprint", "comment", "attachment",
         "workspace member", "checklist item"),
        ("project planning", "sprint tracking", "team coordination", "status updates"),
    ),
    "meetings": (
        BlockCategory.PRODUCTIVITY,
        ("Zoom", "Calendly", "Google Calendar", "Outlook Calendar", "Webex", "Cal.com",
         "GoTo Meeting", "Whereby"),
        ("meeting", "calendar event", "booking", "recording", "attendee", "availability slot",
         "webinar", "meeting transcript"),
        ("scheduling", "meeting notes", "interview loops", "webinars"),
    ),
    "messaging": (
        BlockCategory.COMMUNICATION,
        ("Twilio", "WhatsApp Business", "Vonage", "MessageBird", "Microsoft Teams",
         "Mattermost", "Rocket.Chat", "Zulip", "Pushover", "OneSignal"),
        ("SMS message", "phone call", "channel", "chat message", "phone number",
         "voice recording", "group chat", "push notification"),
        ("notifications", "two-factor codes", "team chat", "customer messaging"),
    ),
    "analytics": (
        BlockCategory.DATA,
        ("Mixpanel", "Amplitude", "Segment", "Google Analytics", "PostHog", "Heap",
         "Plausible", "Matomo", "Looker", "Tableau"),
        ("tracking event", "cohort", "funnel", "report", "user profile", "dashboard",
         "metric", "annotation"),
        ("product analytics", "growth experiments", "weekly reporting", "retention analysis"),
    ),
    "databases": (
        BlockCategory.DATA,
        ("PostgreSQL", "MySQL", "MongoDB", "Redis", "Supabase", "Firebase", "DynamoDB",
         "Snowflake", "BigQuery", "Elasticsearch", "ClickHouse", "Pinecone"),
        ("record", "table", "collection", "document", "query result", "index", "row",
         "snapshot", "vector"),
        ("data pipelines", "syncing records", "reporting queries", "retrieval augmented search"),
    ),
    "social": (
        BlockCategory.SOCIAL,
        ("Twitter", "LinkedIn", "Facebook", "Instagram", "YouTube", "TikTok", "Reddit",
         "Mastodon", "Pinterest", "Bluesky", "Threads"),
        ("post", "comment", "follower", "video", "page", "story", "direct message",
         "playlist", "hashtag"),
        ("social media management", "community engagement", "content publishing",
         "brand monitoring"),
    ),
    "documents": (
        BlockCategory.PRODUCTIVITY,
        ("Google Docs", "DocuSign", "PandaDoc", "Confluence", "Coda", "Dropbox Sign",
         "Quip", "Adobe Sign", "Microsoft Word Online"),
        ("document", "signature request", "document template", "wiki page", "envelope",
         "space", "page comment", "contract"),
        ("contracts", "knowledge bases", "approvals", "proposals"),
    ),
    "ai": (
        BlockCategory.AI,
        ("OpenAI", "Anthropic", "Cohere", "Hugging Face", "Replicate", "Stability AI",
         "Mistral", "ElevenLabs", "Deepgram", "AssemblyAI", "Perplexity"),
        ("completion", "embedding", "generated image", "transcription", "speech audio",
         "fine-tuning job", "moderation result", "translation", "summary"),
        ("generating content", "semantic search", "voice interfaces", "content safety"),
    ),
    "forms": (
        BlockCategory.INPUT,
        ("Typeform", "SurveyMonkey", "Jotform", "Tally", "Google Forms", "Qualtrics",
         "Formstack", "Paperform"),
        ("form", "form response", "survey", "question", "form webhook", "respondent"),
        ("collecting feedback", "lead capture", "research surveys", "registrations"),
    ),
    "logistics": (
        BlockCategory.DATA,
        ("Google Maps", "Mapbox", "HERE", "ShipStation", "EasyPost", "FedEx", "UPS", "DHL",
         "Shippo", "Onfleet"),
        ("route", "geocode", "shipment", "shipping label", "tracking event", "address",
         "place", "delivery", "pickup"),
        ("shipping", "last-mile delivery", "address validation", "fleet planning"),
    ),
    "identity": (
        BlockCategory.SAFETY,
        ("Okta", "Auth0", "1Password", "HashiCorp Vault", "Cloudflare", "Duo", "JumpCloud",
         "Microsoft Entra ID", "Keycloak"),
        ("user", "group", "secret", "role", "access policy", "DNS record", "firewall rule",
         "login session", "API token"),
        ("access reviews", "offboarding", "zero trust", "secret rotation"),
    ),
    "finance": (
        BlockCategory.DATA,
        ("Plaid", "Alpaca", "Coinbase", "Binance", "Kraken", "Wise", "Revolut Business",
         "Mercury", "Brex", "Ramp"),
        ("transaction", "balance", "trade", "bank account", "transfer", "quote", "wallet",
         "exchange rate", "card"),
        ("treasury", "expense control", "portfolio tracking", "cash forecasting"),
    ),
    "content": (
        BlockCategory.MULTIMEDIA,
        ("WordPress", "Ghost", "Webflow", "Contentful", "Sanity", "Strapi", "Spotify",
         "Unsplash", "Vimeo", "SoundCloud", "Cloudinary"),
        ("article", "blog post", "media asset", "content entry", "photo", "track",
         "album", "image transformation", "author"),
        ("publishing", "editorial workflows", "media libraries", "content localisation"),
    ),
    "weather and news": (
        BlockCategory.SEARCH,
        ("OpenWeather", "WeatherAPI", "Tomorrow.io", "NewsAPI", "GNews", "Wikipedia",
         "Hacker News", "Product Hunt", "arXiv"),
        ("forecast", "weather alert", "air quality reading", "headline", "news article",
         "search result", "trending topic", "research paper"),
        ("daily briefings", "market research", "travel planning", "monitoring the news"),
    ),
}  # fmt: skip

# action -> (verbs for names and queries, description templates)
ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "create": (
        ("Create", "Add", "Make", "New"),
        ("Creates a new {obj} in {svc}.", "Adds a {obj} to your {svc} account."),
    ),
    "get": (
        ("Get", "Fetch", "Retrieve", "Read"),
        ("Retrieves one {obj} from {svc}.", "Gets the details of a {svc} {obj}."),
    ),
    "list": (
        ("List", "Browse", "Show all"),
        ("Lists the {objs} in {svc}, page by page.", "Returns every {obj} your {svc} has."),
    ),
    "update": (
        ("Update", "Edit", "Modify", "Change"),
        ("Updates the fields of an existing {svc} {obj}.", "Edits a {obj} in {svc}."),
    ),
    "delete": (
        ("Delete", "Remove", "Erase"),
        ("Deletes a {obj} from {svc} for good.", "Removes the {obj} from {svc}."),
    ),
    "search": (
        ("Search", "Find", "Look up", "Query"),
        ("Searches {svc} {objs} by keyword.", "Finds {objs} in {svc} that match a query."),
    ),
    "archive": (
        ("Archive", "Hide"),
        ("Archives a {obj} in {svc} so it no longer shows.", "Moves a {svc} {obj} to the archive."),
    ),
    "restore": (
        ("Restore", "Unarchive", "Recover"),
        ("Restores an archived or deleted {svc} {obj}.", "Brings a {obj} back in {svc}."),
    ),
    "export": (
        ("Export", "Download", "Dump"),
        ("Exports {svc} {objs} to a CSV or JSON file.", "Downloads {objs} from {svc} as a file."),
    ),
    "import": (
        ("Import", "Upload", "Load"),
        ("Imports {objs} into {svc} from a file.", "Uploads many {objs} to {svc} at once."),
    ),
    "send": (
        ("Send", "Deliver", "Post"),
        ("Sends a {obj} through {svc}.", "Delivers the {obj} with {svc} to its recipients."),
    ),
    "sync": (
        ("Sync", "Mirror", "Replicate"),
        ("Keeps {svc} {objs} in sync with another system.", "Syncs changed {objs} from {svc}."),
    ),
    "count": (
        ("Count", "Tally"),
        ("Counts the {objs} in {svc} that match a filter.", "Returns how many {objs} {svc} has."),
    ),
    "assign": (
        ("Assign", "Reassign", "Hand over"),
        ("Assigns a {svc} {obj} to a person or team.", "Changes who owns a {obj} in {svc}."),
    ),
    "duplicate": (
        ("Duplicate", "Copy", "Clone"),
        ("Makes a copy of a {svc} {obj}.", "Clones an existing {obj} in {svc}."),
    ),
    "merge": (
        ("Merge", "Combine", "Deduplicate"),
        ("Merges two duplicate {objs} in {svc} into one.", "Combines {svc} {objs} that repeat."),
    ),
    "schedule": (
        ("Schedule", "Plan", "Queue"),
        ("Schedules a {obj} in {svc} for a later time.", "Queues a {svc} {obj} for later."),
    ),
    "cancel": (
        ("Cancel", "Stop", "Abort"),
        ("Cancels a pending {svc} {obj}.", "Stops a {obj} in {svc} before it completes."),
    ),
    "approve": (
        ("Approve", "Accept", "Sign off"),
        ("Approves a {obj} waiting for review in {svc}.", "Marks a {svc} {obj} as accepted."),
    ),
    "tag": (
        ("Tag", "Label", "Categorize"),
        ("Adds tags or labels to a {svc} {obj}.", "Labels a {obj} in {svc} for filtering."),
    ),
    "watch": (
        ("Watch", "Subscribe to", "Monitor"),
        ("Notifies you when a {svc} {obj} changes.", "Watches {svc} for new or changed {objs}."),
    ),
    "summarize": (
        ("Summarize", "Digest", "Recap"),
        ("Writes a short summary of a {svc} {obj}.", "Summarizes recent {objs} in {svc}."),
    ),
}  # fmt: skip

# qualifier -> (name suffix words, phrase in descriptions and queries, extra input field)
QUALIFIERS: tuple[tuple[str, str, tuple[str, str] | None], ...] = (
    ("", "", None),
    ("ById", "by its id", ("{o}_id", "The id of the {obj} in {svc}")),
    ("ByEmail", "by email address", ("email", "Email address the {obj} belongs to")),
    ("InBulk", "in bulk, up to a thousand at a time", ("items", "The {objs} to process")),
    ("ForDateRange", "for a date range", ("since", "Start of the date range (ISO 8601)")),
    ("ByStatus", "filtered by status", ("status", "Only {objs} with this status")),
    ("FromCsv", "from a CSV spreadsheet", ("csv_text", "CSV text, one {obj} per row")),
    ("WithAttachments", "including attachments", ("attachments", "Files attached to the {obj}")),
)  # fmt: skip

GENERIC_SENTENCES = (
    "Requires a connected {svc} account.",
    "Useful for {purpose}.",
    "Handy for {purpose} in {svc}.",
    "Works with {svc}'s REST API and respects its rate limits.",
    "Returns the {svc} response as structured data.",
    "Pagination is handled for you.",
    "Fields you leave out keep their current values.",
    "Only {objs} you have access to are included.",
)
