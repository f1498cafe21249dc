"""What the simulated network's customers say, and what a care team answers: the text bank
of the demo network's live stream (demo.py) and of the demo's 30 days of history
(apps/ops/demo_history.py). Plain data, no Django.

Each topic has openers (a first message), follow-ups (the customer again, in the same
thread), the team's replies and a note an agent might leave. Hashtags are the kind people
use (#fail, #delivery), never an order number; order numbers are written without "#"."""

FIRST_NAMES = [
    "María", "Tom", "Priya", "John", "Sam", "Léa", "Kenji", "Anna", "Mohammed", "Chloe", "Nikolai", "Fatima",
    "Lucas", "Emma", "Oliver", "Sofia", "Mateo", "Aisha", "Noah", "Mia", "Ethan", "Hana", "Liam", "Zoe", "David",
    "Amara", "Jonas", "Ines", "Pedro", "Yara", "Felix", "Elena", "Omar", "Grace", "Hugo", "Nora", "Ravi", "Julia",
    "Ben", "Leila", "Marco", "Sara", "Tariq", "Ana", "Finn", "Mei", "Karim", "Lena", "Diego", "Chiara",
]
LAST_NAMES = [
    "García", "Becker", "Kumar", "Doe", "Ortiz", "Martin", "Tanaka", "Berg", "Ali", "Reed", "Ivanov", "Haddad",
    "Silva", "Novak", "Smith", "Rossi", "Fernández", "Okafor", "Nguyen", "Schmidt", "Jensen", "Kowalski", "Dubois",
    "Park", "Cohen", "Lindqvist", "Moreau", "Yilmaz", "Costa", "Murphy", "Sato", "Petrov", "Mensah", "Wright",
]

# topic -> openers, follow-ups, replies, notes, tags a care team would set by hand
TOPICS = {
    "delivery": {
        "openers": [
            "my order {order} still hasn't arrived and it's been two weeks. Where is it? #delivery",
            "tracking says delivered but there's no parcel at my door. Order {order}.",
            "the courier left my package in the rain, everything is soaked #fail",
            "third time my delivery slot was missed. I took the day off for this.",
            "when will order {order} ship? It has said 'processing' for 5 days.",
            "my package arrived damaged, the box was crushed. What now?",
        ],
        "follow_ups": [
            "still waiting on this...", "ok, order number is {order}", "the tracking page hasn't changed since Monday.",
            "it finally arrived, thanks!", "I sent you a DM with the details.", "any news? It's been two days.",
        ],
        "replies": [
            "Sorry about the wait, {name}! Could you send us your order number in a DM so we can check with the courier?",
            "Thanks {name}, I've opened a claim with the courier. You'll hear from us within 24 hours.",
            "I checked order {order}: it's at the local depot and goes out on the next round today.",
            "So sorry it arrived like that. A replacement is on its way, no need to send the damaged one back.",
        ],
        "notes": ["Courier claim opened, reference on the order.", "Replacement sent, express shipping."],
        "tags": ["delivery"],
    },
    "refund": {
        "openers": [
            "I was charged twice this month. I want a refund now.",
            "returned my order three weeks ago and still no refund. #customerservice",
            "why did you charge my card after I cancelled? Money back please.",
            "the discount code wasn't applied at checkout, can I get the difference back?",
        ],
        "follow_ups": [
            "the refund still isn't on my statement.", "it's order {order}.", "thanks, I see the refund now!",
            "this is taking far too long. Thinking about cancelling.",
        ],
        "replies": [
            "Sorry for the double charge, {name}. I've refunded the second payment; banks take 3-5 working days.",
            "I can see the return arrived at our warehouse. The refund is processed today.",
            "Thanks for your patience. I've applied the code and refunded the difference to your card.",
        ],
        "notes": ["Refund issued in the payment console.", "Duplicate charge confirmed, refunded. @supervisor FYI"],
        "tags": ["refund", "billing"],
    },
    "login": {
        "openers": [
            "I can't log in since yesterday, password reset email never arrives.",
            "my account is locked after the update and support chat doesn't load.",
            "why was my account suspended without any warning??",
            "how do I change the email on my account?",
            "¿alguien me puede ayudar? No puedo iniciar sesión desde ayer.",
        ],
        "follow_ups": [
            "tried that, still locked out.", "that worked, I'm back in. Thanks!", "nothing in spam either.",
            "gracias, ya funciona.",
        ],
        "replies": [
            "Sorry about that, {name}! I've unlocked your account; please try the reset link again.",
            "The reset emails were delayed this morning. A new one is on its way now.",
            "You can change it under Settings > Account > Email. Let us know if it doesn't stick.",
        ],
        "notes": ["Account unlocked manually; 2FA reset requested.", "Known issue with reset emails this week."],
        "tags": ["login"],
    },
    "app": {
        "openers": [
            "the app keeps crashing when I open settings. Completely broken since the update. #appupdate",
            "checkout button does nothing on Android. Tried reinstalling.",
            "can you add dark mode to the mobile app please? #darkmode",
            "the new update logged me out and now it shows an error at login.",
        ],
        "follow_ups": [
            "version 5.2.1, Pixel 7.", "the update fixed it, thanks!", "still crashing after the update.",
            "any timeline for that?",
        ],
        "replies": [
            "Thanks for the report, {name}. Which phone and app version are you on?",
            "A fix is in version 5.2.2, out today. Sorry for the trouble!",
            "Good idea! I've passed it to the product team; dark mode is on the roadmap.",
        ],
        "notes": ["Crash matches the known bug in 5.2.1, fix ships today.", "Feature request logged for product."],
        "tags": ["app", "bug"],
    },
    "outage": {
        "openers": [
            "is there an outage? Nothing loads for me since 9am. #outage",
            "site is down again. I can't place my order. #fail",
            "your website has been down for an hour, is anyone working on it?",
            "I'll talk to my lawyer if this isn't sorted by Friday.",
        ],
        "follow_ups": ["working again now, thanks.", "still down for me.", "please post updates somewhere."],
        "replies": [
            "We're aware of the issue and working on a fix. Updates on our status page. Sorry for the trouble!",
            "Everything should be back now. Thanks for your patience, {name}.",
        ],
        "notes": ["Part of the checkout incident; engineering on it.", "Escalated to @supervisor."],
        "tags": ["outage"],
    },
    "question": {
        "openers": [
            "where can I download my invoices?", "do you ship to Canada?",
            "what's the difference between the basic and the plus plan?",
            "can I change the delivery address on order {order}?",
            "pourquoi ma commande est-elle annulée ? Je suis très déçue.",
        ],
        "follow_ups": ["perfect, thanks!", "and how long does it take?", "got it 👍"],
        "replies": [
            "Hi {name}! Invoices are under Account > Orders; each order has a PDF link.",
            "Yes, we ship to Canada: 5-7 working days, duties included.",
            "Plus adds free returns and priority support. You can switch any time in Settings.",
            "Done: the new address is on the order. It ships tomorrow.",
        ],
        "notes": ["Customer asked twice about invoices: add to the FAQ?"],
        "tags": ["question"],
    },
    "praise": {
        "openers": [
            "thanks for the quick fix yesterday, you folks are great! #customerservice",
            "love the new dashboard, really clean 😍 #newlook",
            "the delivery driver was super friendly today, shout out! #kudos",
            "best support team I've dealt with this year. Thank you!",
        ],
        "follow_ups": ["🙏", "will do!"],
        "replies": [
            "That's so kind, {name}, thank you! We'll pass it on to the team.",
            "Thanks {name}, glad you like it! 💙",
        ],
        "notes": ["Nice one for the weekly kudos board."],
        "tags": ["praise"],
    },
    "complaint": {
        "openers": [
            "I've been on hold for an hour. Terrible service, thinking about cancelling.",
            "nobody answers my emails. Third time asking. #customerservice #fail",
            "the quality of this jacket is awful, the zip broke after two days.",
            "your chat bot keeps sending me in circles. I want a human.",
        ],
        "follow_ups": [
            "that doesn't help at all.", "ok, thank you for sorting it out.", "I'd like to speak to a manager.",
            "fine, waiting for the return label.",
        ],
        "replies": [
            "I'm really sorry, {name}. I'm taking this over personally; can you DM me your order number?",
            "Sorry about the quality. I've sent a prepaid return label and a full refund once it's back.",
            "You're talking to a human now 🙂 Let's get this fixed. What's the order number?",
        ],
        "notes": ["Unhappy customer: offered a 20% voucher.", "@supervisor please review, customer asks for a manager."],
        "tags": ["complaint"],
    },
}
# How often each topic opens a conversation (weights).
TOPIC_WEIGHTS = {"delivery": 24, "refund": 14, "login": 14, "app": 12, "outage": 6, "question": 14, "praise": 8,
                 "complaint": 8}
# The customer coming back after a resolution (the conversation reopens).
COMEBACKS = [
    "it happened again with my new order.", "the problem is back, same as last week.",
    "sorry, one more question about this.", "still not fixed, I'm afraid.", "the replacement is broken too. #fail",
]
CLOSERS = ["Glad we could help! Have a great day.", "Happy to help, {name}. Take care!"]
# Posts about the brand that need no answer: the demo's routing rule "Shout-outs need no reply"
# closes them (its keywords are CHATTER_TAGS); they still count in sentiment and hashtags.
CHATTER_TAGS = ["#shoutout", "#unboxing", "#acmefan", "#happycustomer"]
CHATTER = [
    "just got my order, love it {tag}", "new jacket arrived today and it fits perfectly {tag}",
    "the packaging is so nice this time {tag} #sustainability", "third order this month, no regrets {tag}",
    "meh, the colour is a bit different from the photos {tag}", "waited a week but worth it {tag}",
    "Acme's summer sale is actually good this year {tag} #blackfriday", "honestly the best app update in ages {tag}",
    "delivery was late again but the product is great {tag}", "not sure about the new logo tbh {tag} #newlook",
]
