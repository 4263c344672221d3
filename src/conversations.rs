//! A generated conversation dataset in the LoCoMo format, for the quality benchmark when no real
//! one is given: multi-session chats between two friends with planted facts (names, places,
//! numbers, dates, preferences, first-person statements), small talk, and distractor turns that
//! share the questions' words, plus questions of LoCoMo's five categories whose evidence turns are
//! known. Deterministic from a seed.
//!
//! Questions are paraphrases: they name the fact the way someone asking would ("What is the name
//! of Ana's dog?") while the evidence turn says it the way the speaker did ("the kids named her
//! Biscuit, our little rescue puppy"), and distractor turns use the question's own words ("what
//! was the name of that dog groomer?"). So exact keyword overlap is not enough to rank the
//! evidence first, and an embedder that knows a puppy is a dog helps.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::locomo::{Conversation, Dataset, Question, Session, SessionDate, Turn};
use crate::workload::DEFAULT_SEED;

/// How big a generated dataset is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationConfig {
    pub seed: u64,
    pub conversations: usize,
    pub sessions: usize,
    /// Turns of one session: uniform in this range (planted turns included).
    pub session_turns: (usize, usize),
    /// Single-hop facts per speaker (at most the number of fact kinds).
    pub facts_per_speaker: usize,
    /// Temporal facts per speaker.
    pub events_per_speaker: usize,
    /// Two-turn (multi-hop) facts per speaker.
    pub chains_per_speaker: usize,
    /// Open-domain (inference) facts per speaker.
    pub leanings_per_speaker: usize,
    /// Adversarial questions per conversation.
    pub adversarial: usize,
    /// Distractor turns planted per question.
    pub distractors_per_question: usize,
}

impl Default for ConversationConfig {
    /// About 4,000 turns and 330 questions over 10 conversations of 16 sessions.
    fn default() -> Self {
        ConversationConfig {
            seed: DEFAULT_SEED,
            conversations: 10,
            sessions: 16,
            session_turns: (18, 32),
            facts_per_speaker: 8,
            events_per_speaker: 3,
            chains_per_speaker: 2,
            leanings_per_speaker: 2,
            adversarial: 3,
            distractors_per_question: 2,
        }
    }
}

impl ConversationConfig {
    /// A small dataset for smoke runs and tests: 2 conversations of 6 sessions.
    pub fn small() -> Self {
        ConversationConfig {
            conversations: 2,
            sessions: 6,
            session_turns: (12, 20),
            facts_per_speaker: 4,
            events_per_speaker: 1,
            chains_per_speaker: 1,
            leanings_per_speaker: 1,
            adversarial: 1,
            ..ConversationConfig::default()
        }
    }
}

/// A fact type: how it is said, asked and answered, and what distracts from it. Templates use
/// `{name}` (the fact's owner), `{other}` (the other speaker) and the slots' names.
struct Kind {
    /// Slot names (`|`-separated) and their pool of values (same shape).
    slots: &'static [(&'static str, &'static [&'static str])],
    statements: &'static [&'static str],
    questions: &'static [&'static str],
    answer: &'static str,
    /// Turns by either speaker that share the question's words but not the fact.
    distractors: &'static [&'static str],
}

const PET_NAMES: &[&str] = &[
    "Biscuit",
    "Pepper",
    "Juniper",
    "Waffles",
    "Mochi",
    "Clementine",
    "Ziggy",
    "Noodle",
    "Hazel",
    "Pickles",
    "Olive",
    "Bruno",
    "Maple",
    "Tofu",
    "Rosie",
    "Gus",
];
const CITIES: &[&str] = &[
    "Lisbon",
    "Denver",
    "Montreal",
    "Osaka",
    "Edinburgh",
    "Austin",
    "Melbourne",
    "Prague",
    "Seattle",
    "Valencia",
    "Krakow",
    "Portland",
    "Nashville",
    "Dublin",
    "Vancouver",
    "Bergen",
];
const TOWNS: &[&str] = &[
    "Port Ellis",
    "Millbrook",
    "Cedar Falls",
    "Harlow Bay",
    "Dunmore",
    "Willow Creek",
    "Stonehaven",
    "Fairhope",
    "Kingsbridge",
    "Ashby",
    "Red Hollow",
    "Marlowe",
];
const SIBLINGS: &[&str] = &[
    "brother|Tomas|he",
    "brother|Kofi|he",
    "brother|Luca|he",
    "brother|Anders|he",
    "sister|Ines|she",
    "sister|Priya|she",
    "sister|Greta|she",
    "sister|Mei|she",
];

const SINGLE_HOP: &[Kind] = &[
    Kind {
        slots: &[("young|adult", &["puppy|dog", "kitten|cat"]), ("pet", PET_NAMES)],
        statements: &[
            "We finally brought a little rescue {young} home on Saturday, and the kids named her {pet}.",
            "Meet {pet}! Tiny {young} from the shelter, she has already chewed through two of my shoes.",
            "Our new {adult} {pet} finally sleeps through the night, the crate training worked.",
        ],
        questions: &["What is the name of {name}'s {adult}?", "What did {name} call the new {adult}?"],
        answer: "{pet}",
        distractors: &[
            "I can never remember the name of that {adult} groomer on Fifth Street.",
            "My neighbor's {adult} barked at the mailman all morning, I got nothing done.",
            "{name}, did you see that video of the {adult} riding a skateboard?",
        ],
    },
    Kind {
        slots: &[
            ("role", &[
                "pediatric nurse", "structural engineer", "pastry chef", "paralegal",
                "chemistry teacher", "UX designer", "physical therapist", "data analyst",
                "park ranger", "sound engineer", "pharmacist", "librarian",
            ]),
            ("employer", &[
                "Riverside Hospital", "Hale & Partners", "the Bluebird Bakery", "Northgate High",
                "Copperline Labs", "the county library", "Summit Rehab", "Oakwell Studios",
            ]),
        ],
        statements: &[
            "Big news: I accepted the offer, I'll be a {role} at {employer} starting next month.",
            "I signed the contract today, so as of June I'm officially a {role} at {employer}.",
            "I got the job! They hired me as a {role} at {employer}.",
        ],
        questions: &["What job was {name} hired for?", "What does {name} do for a living now?"],
        answer: "{role} at {employer}",
        distractors: &[
            "Work has been a nightmare, my boss wants the whole report redone by Friday.",
            "{name}, do you ever think about what you'd do for a living if money didn't matter?",
            "My cousin got hired somewhere downtown but he won't tell anyone what the job is.",
        ],
    },
    Kind {
        slots: &[("town", TOWNS)],
        statements: &[
            "I grew up in {town}, a tiny place where everybody knows your business.",
            "Back in {town}, where I spent my whole childhood, the only cinema closed at eight.",
            "I was raised in {town}, population about three thousand and one traffic light.",
        ],
        questions: &["Where is {name} originally from?", "Which town was {name} raised in?"],
        answer: "{town}",
        distractors: &[
            "Originally I wanted to paint the kitchen blue, but we went with white.",
            "Where did you say the new bakery is? Somewhere near the station?",
            "{name}, that town we drove through last year had the best pie, remember?",
        ],
    },
    Kind {
        slots: &[("sibling|sib|pron", SIBLINGS), ("city", CITIES)],
        statements: &[
            "My {sibling} {sib} lives in {city} now, {pron} says {pron}'ll never move back.",
            "{sib} moved out to {city} last year and {pron} loves it, my {sibling} even bought a bike.",
        ],
        questions: &["Which city is {name}'s {sibling} based in?", "Where does {name}'s {sibling} live these days?"],
        answer: "{city}",
        distractors: &[
            "My {sibling}-in-law keeps sending me photos of cities she wants to visit.",
            "{name}, is your family coming over for the holidays this year?",
            "Living in a big city must be exhausting, I like our quiet street.",
        ],
    },
    Kind {
        slots: &[("time", &[
            "4 hours and 12 minutes", "3 hours and 58 minutes", "5 hours and 3 minutes",
            "4 hours and 37 minutes", "3 hours and 41 minutes", "4 hours and 50 minutes",
        ])],
        statements: &[
            "Crossed the finish line of the marathon in {time}, my legs are jelly.",
            "Official chip time for the marathon: {time}. Not fast, but I didn't walk once!",
            "My finishing time at the city marathon was {time}, a personal best.",
        ],
        questions: &["How long did it take {name} to complete the race?", "What was {name}'s finishing time?"],
        answer: "{time}",
        distractors: &[
            "It took me forever to get home, the traffic on the bridge was insane.",
            "{name}, how long does it take you to get ready in the morning?",
            "The race on TV last night went on for hours, I fell asleep.",
        ],
    },
    Kind {
        slots: &[("food", &[
            "pho", "ramen", "chicken tortilla soup", "mac and cheese", "shakshuka",
            "butter chicken", "mushroom risotto", "lentil dal", "pierogi", "clam chowder",
        ])],
        statements: &[
            "Honestly nothing beats a big bowl of {food} when it's cold and grey outside.",
            "Whenever I've had a rough day I make {food}, it's the one thing that always fixes me.",
            "{food} is my ultimate comfort food, I could eat it every day.",
        ],
        questions: &["What is {name}'s comfort food?", "What dish does {name} crave on bad days?"],
        answer: "{food}",
        distractors: &[
            "The food at that new place downtown was overpriced and bland.",
            "{name}, what should I cook for the potluck on Sunday?",
            "Bad days at work make me want to skip dinner entirely.",
        ],
    },
    Kind {
        slots: &[("car", &[
            "used Subaru Outback", "red Mazda 3", "Toyota Prius", "Ford Maverick pickup",
            "Volvo station wagon", "Honda Civic hatchback", "Kia EV6", "Jeep Wrangler",
        ])],
        statements: &[
            "We traded in the old minivan and drove home a {car} today!",
            "Finally bought a {car}, forty thousand miles on it but it runs like a dream.",
            "The new car is a {car}, and I actually enjoy driving again.",
        ],
        questions: &["What vehicle did {name} get?", "What kind of car does {name} drive now?"],
        answer: "a {car}",
        distractors: &[
            "My car made a weird noise again, I think it's the brakes.",
            "{name}, can you drive me to the airport next Thursday?",
            "Parking downtown is impossible, I circled for half an hour.",
        ],
    },
    Kind {
        slots: &[("hobby", &[
            "pottery", "salsa dancing", "watercolor painting", "woodworking", "rock climbing",
            "Italian", "improv comedy", "ceramics glazing", "bread baking", "calligraphy",
        ])],
        statements: &[
            "I signed up for {hobby} lessons on Thursday nights at the community center.",
            "Every Tuesday after work I go to a {hobby} class, it's the highlight of my week.",
        ],
        questions: &["What is {name} learning in the evenings?", "What class does {name} take after work?"],
        answer: "{hobby}",
        distractors: &[
            "I'm learning so much at this new job, it's overwhelming.",
            "{name}, are you free any evening next week for dinner?",
            "The kids' school has a parents' evening on Wednesday.",
        ],
    },
    Kind {
        slots: &[("allergen", &[
            "shellfish", "peanuts", "sesame", "penicillin", "cats", "bee stings", "kiwi",
            "tree nuts",
        ])],
        statements: &[
            "Found out the hard way that I'm allergic to {allergen}, my face swelled up at the wedding.",
            "The doctor confirmed it: I react badly to {allergen}, so I carry an EpiPen now.",
        ],
        questions: &["What allergy does {name} have?", "What is {name} allergic to?"],
        answer: "{allergen}",
        distractors: &[
            "Spring allergies are brutal this year, everyone at work is sneezing.",
            "{name}, does anyone at the party have allergies I should know about?",
            "I'm allergic to Monday mornings, ha.",
        ],
    },
    Kind {
        slots: &[("book", &[
            "The Overstory", "Piranesi", "Station Eleven", "The Name of the Wind", "Circe",
            "Project Hail Mary", "A Gentleman in Moscow", "The Remains of the Day",
        ])],
        statements: &[
            "I'm halfway through '{book}' and I can't put it down, I read until two last night.",
            "Started '{book}' on the train this week, it's so good I missed my stop.",
            "Reading '{book}' right now, best novel I've picked up in years.",
        ],
        questions: &["What novel is {name} reading?", "Which book has {name} been hooked on?"],
        answer: "{book}",
        distractors: &[
            "I keep buying books and never reading them, my shelf is a graveyard.",
            "{name}, have you been reading anything good lately?",
            "The book club picked a novel I really didn't like.",
        ],
    },
    Kind {
        slots: &[("instrument", &[
            "cello", "banjo", "trumpet", "ukulele", "piano", "saxophone", "violin", "drums",
        ])],
        statements: &[
            "I've been practicing the {instrument} every night, my neighbors must hate me.",
            "Dusted off my old {instrument} and played for an hour, my fingers remember more than I thought.",
            "I've been learning to play the {instrument}, my teacher says I'm improving.",
        ],
        questions: &["What instrument does {name} play?", "Which musical instrument has {name} been practising?"],
        answer: "the {instrument}",
        distractors: &[
            "The band at the wedding played way too loud.",
            "{name}, do you still listen to that jazz playlist I sent?",
            "My son wants to learn an instrument but I'm scared of the noise.",
        ],
    },
    Kind {
        slots: &[("child|kid|age", &[
            "son|Eli|seven", "daughter|Nora|nine", "son|Sami|five", "daughter|Ava|twelve",
            "son|Jonah|eleven", "daughter|Lila|six",
        ])],
        statements: &[
            "{kid} turned {age} on Sunday, we had a huge party with a bouncy castle in the yard.",
            "Can you believe {kid} is {age} already? We had cake and way too many balloons.",
            "My {child} {kid} is {age} now and suddenly too cool to hold my hand.",
        ],
        questions: &["How old is {name}'s {child}?", "What age did {name}'s {child} just reach?"],
        answer: "{age}",
        distractors: &[
            "{name}, your {child} is so tall now, I barely recognized them.",
            "How old is that oak tree in the park? It must be ancient.",
            "My nephew's birthday is coming up and I have no idea what to get.",
        ],
    },
    Kind {
        slots: &[("rent", &["1,450", "2,100", "1,875", "980", "2,650", "1,320"])],
        statements: &[
            "Rent on the new apartment is ${rent} a month, which is insane for two bedrooms.",
            "We pay ${rent} a month for this place now and the dishwasher still leaks.",
        ],
        questions: &["How much does {name} pay for housing?", "What is {name}'s monthly housing cost?"],
        answer: "${rent} a month",
        distractors: &[
            "Housing prices around here keep going up, it's ridiculous.",
            "{name}, how much did you pay for those concert tickets?",
            "My monthly phone bill doubled and nobody can tell me why.",
        ],
    },
    Kind {
        slots: &[("team", &[
            "Green Bay Packers", "Boston Celtics", "Chicago Cubs", "Seattle Sounders",
            "Liverpool", "Toronto Maple Leafs", "Denver Nuggets", "Real Madrid",
        ])],
        statements: &[
            "I've been a {team} fan since I was six, my dad took me to my first game.",
            "Watching the {team} lose again last night nearly broke me, but I'll never switch.",
            "I'll support the {team} until I die, win or lose.",
        ],
        questions: &["Which team does {name} support?", "What team is {name} loyal to?"],
        answer: "the {team}",
        distractors: &[
            "Our team at work finally shipped the project, pizza party on Friday.",
            "{name}, do you want to watch the game at my place?",
            "Sports bars are too loud for me, I can't hear myself think.",
        ],
    },
    Kind {
        slots: &[("drink", &[
            "oat milk latte", "double espresso", "matcha with honey", "chai with extra ginger",
            "cold brew with cinnamon", "flat white",
        ])],
        statements: &[
            "I can't function until I've had my {drink}, it's a ritual at this point.",
            "Every single morning starts with a {drink} from the cart by the station.",
        ],
        questions: &["What does {name} drink every morning?", "What is {name}'s usual morning beverage?"],
        answer: "a {drink}",
        distractors: &[
            "Mornings are the worst, I hit snooze four times today.",
            "{name}, want to grab a drink after work on Friday?",
            "The coffee machine at the office broke again.",
        ],
    },
];

/// Temporal facts: `{when}` is a relative time the answer turns into a date.
const EVENTS: &[Kind] = &[
    Kind {
        slots: &[],
        statements: &["I finally passed my driving test {when}, third time lucky!"],
        questions: &["When did {name} get a driver's license?"],
        answer: "{date}",
        distractors: &["{name}, are you still nervous about driving on the highway?"],
    },
    Kind {
        slots: &[("city", CITIES)],
        statements: &["We flew to {city} for a long weekend {when}, the food was unreal."],
        questions: &["When did {name} take the trip to {city}?"],
        answer: "{date}",
        distractors: &["I'd love to take a trip somewhere warm, {name}, any ideas?"],
    },
    Kind {
        slots: &[],
        statements: &["Ran my first half marathon {when}, thirteen miles in the rain!"],
        questions: &["When did {name} run a half marathon?"],
        answer: "{date}",
        distractors: &["My sister wants me to run a 5k with her but I hate running."],
    },
    Kind {
        slots: &[],
        statements: &["Guess who got promoted to team lead {when}? Me!"],
        questions: &["When did {name} get the promotion?"],
        answer: "{date}",
        distractors: &["{name}, when is your performance review this year?"],
    },
    Kind {
        slots: &[],
        statements: &["I had the knee surgery {when}, I'm on crutches and bored out of my mind."],
        questions: &["When was {name}'s knee operation?"],
        answer: "{date}",
        distractors: &["My knee has been clicking when I climb stairs, is that normal?"],
    },
    Kind {
        slots: &[],
        statements: &["We adopted two chickens {when}, fresh eggs every morning now."],
        questions: &["When did {name} start keeping chickens?"],
        answer: "{date}",
        distractors: &["{name}, do you know a good recipe for chicken thighs?"],
    },
    Kind {
        slots: &[],
        statements: &["I volunteered at the food bank {when}, we packed three hundred boxes."],
        questions: &["When did {name} volunteer at the food bank?"],
        answer: "{date}",
        distractors: &["The food bank is asking for canned goods again this month."],
    },
    Kind {
        slots: &[],
        statements: &[
            "My band played our first real gig {when}, at a bar with twelve people in it.",
        ],
        questions: &["When did {name}'s band perform their first show?"],
        answer: "{date}",
        distractors: &["{name}, that band you like is touring in the fall, want tickets?"],
    },
];

/// Two turns in different sessions; the question needs both (`{first}` then `{second}`).
struct Chain {
    slots: &'static [(&'static str, &'static [&'static str])],
    first: &'static str,
    second: &'static str,
    question: &'static str,
    answer: &'static str,
}

const CHAINS: &[Chain] = &[
    Chain {
        slots: &[
            ("sibling|sib|pron", SIBLINGS),
            ("city", CITIES),
            (
                "workplace",
                &[
                    "aquarium",
                    "botanical garden",
                    "children's hospital",
                    "science museum",
                    "city zoo",
                ],
            ),
        ],
        first:
            "My {sibling} {sib} is moving to {city} in the spring, {pron}'s terrified and excited.",
        second: "{sib} got hired at the {workplace}, {pron} starts Monday!",
        question: "In which city is the {workplace} where {name}'s {sibling} works?",
        answer: "{city}",
    },
    Chain {
        slots: &[
            (
                "car",
                &[
                    "Volvo wagon",
                    "Mazda hatchback",
                    "Ford pickup",
                    "Subaru Forester",
                ],
            ),
            ("miles", &["600", "450", "820", "380"]),
            (
                "place",
                &[
                    "the Rockies",
                    "the lake cabin",
                    "Big Sur",
                    "the Outer Banks",
                ],
            ),
        ],
        first: "We bought a {car}, it smells like someone else's dog but we love it.",
        second: "Took the new car to {place} and back, {miles} miles without a single problem.",
        question: "How far did {name} drive the {car} on the road trip?",
        answer: "{miles} miles",
    },
    Chain {
        slots: &[
            (
                "friend",
                &["Dana", "Marco", "Yusuf", "Helena", "Theo", "Farah"],
            ),
            ("city", CITIES),
        ],
        first: "My old college roommate {friend} is getting married in {city} this summer.",
        second: "Just got back from {friend}'s wedding, they said their vows on a boat!",
        question: "Where did {name}'s college roommate have the wedding?",
        answer: "{city}",
    },
    Chain {
        slots: &[(
            "subject",
            &[
                "cybersecurity",
                "project management",
                "nutrition science",
                "data visualization",
                "sign language",
            ],
        )],
        first: "I enrolled in an online {subject} course, twelve weeks of homework again.",
        second: "Passed the final exam! I'm officially certified, I can't stop grinning.",
        question: "What subject did {name} earn a certificate in?",
        answer: "{subject}",
    },
    Chain {
        slots: &[(
            "plant",
            &[
                "tomatoes",
                "zucchini",
                "strawberries",
                "chili peppers",
                "sunflowers",
            ],
        )],
        first: "I planted {plant} along the back fence, fingers crossed the squirrels stay away.",
        second: "The garden exploded this month, I'm giving the harvest away to the whole street.",
        question: "What did {name} grow that produced a big harvest?",
        answer: "{plant}",
    },
];

/// Open-domain (inference) facts: the question asks what the statement implies.
const LEANINGS: &[Kind] = &[
    Kind {
        slots: &[],
        statements: &["I could spend every weekend on a mountain trail, give me switchbacks and a packed lunch."],
        questions: &["Would {name} enjoy a hiking vacation?"],
        answer: "Likely yes; {name} loves mountain trails",
        distractors: &["Vacations with kids are more work than work, honestly."],
    },
    Kind {
        slots: &[],
        statements: &["Big crowds make me panic, I left the festival after ten minutes."],
        questions: &["Would {name} like a seat in a packed stadium?"],
        answer: "Probably not; crowds make {name} panic",
        distractors: &["The stadium downtown is getting a new roof, finally."],
    },
    Kind {
        slots: &[],
        statements: &["I've been vegetarian for ten years, I don't even miss burgers."],
        questions: &["Would {name} order a steak at dinner?"],
        answer: "No; {name} is vegetarian",
        distractors: &["{name}, where should we go for dinner on Friday?"],
    },
    Kind {
        slots: &[],
        statements: &["I get seasick just looking at boats in a harbour."],
        questions: &["Would {name} enjoy a week-long cruise?"],
        answer: "Probably not; {name} gets seasick",
        distractors: &["My parents went on a cruise and came back sunburned."],
    },
    Kind {
        slots: &[],
        statements: &["I'm saving every penny for a down payment, no takeout for me this year."],
        questions: &["Is {name} likely to buy an expensive gadget soon?"],
        answer: "Unlikely; {name} is saving for a home",
        distractors: &["{name}, have you seen the new phone? It costs a fortune."],
    },
    Kind {
        slots: &[],
        statements: &["Winter is my season, I'd ski every day if my knees let me."],
        questions: &["Would {name} be happy on a snowy holiday in the Alps?"],
        answer: "Likely yes; {name} loves winter and skiing",
        distractors: &["The holiday schedule at work is a mess again."],
    },
];

/// Everyday lines between the facts. `{other}` is the person spoken to.
const SMALL_TALK: &[&str] = &[
    "Hey {other}! How's your week going?",
    "Not bad at all, just tired. You?",
    "Ha, same here. It's been one of those weeks.",
    "Did you end up doing anything fun this weekend?",
    "Mostly stayed in and caught up on laundry, very glamorous.",
    "The weather has been so weird lately, sunny one minute and pouring the next.",
    "I know, I got soaked walking back from the store.",
    "Have you watched anything good recently?",
    "We started that detective series everyone talks about, it's pretty gripping.",
    "Oh nice, no spoilers please!",
    "That sounds lovely, honestly.",
    "I'm so glad to hear that.",
    "Ugh, that's rough. Hope it gets better soon.",
    "Totally get it.",
    "Haha, that's hilarious.",
    "Wait, really? I had no idea.",
    "Anyway, enough about me, what's new with you?",
    "Not much to report, things are pretty quiet.",
    "I should really get more sleep, I keep staying up too late.",
    "Same, my phone is the enemy.",
    "Did you try that new cafe on the corner yet?",
    "Yeah, the pastries are great but the line is long.",
    "I've been trying to walk more, at least thirty minutes a day.",
    "Good for you, I keep saying I'll do that.",
    "The kids have been driving me up the wall this week.",
    "Oh I believe it, summer break is long.",
    "Work is busy but manageable, can't complain.",
    "Let's definitely catch up properly soon.",
    "Talk soon, take care!",
    "You too, say hi to everyone for me.",
    "Thanks for listening, {other}, I needed that.",
    "Any plans for the holidays yet?",
    "Not yet, we always leave it to the last minute.",
    "My phone died halfway through the day, so annoying.",
    "I finally cleaned out the garage, found so much junk.",
    "That's the best feeling, isn't it?",
    "I made soup from scratch yesterday, pretty proud of it.",
    "The traffic this morning was unbelievable.",
    "I've been meaning to call you all week, {other}.",
    "No worries at all, life gets busy.",
    "We should plan a picnic when it warms up.",
    "Count me in!",
    "I think I'm coming down with a cold.",
    "Drink lots of tea and rest, seriously.",
    "Did you hear the storm last night? So loud.",
    "I slept right through it, somehow.",
    "I'm trying to learn to cook more vegetables.",
    "Roasting them is the secret, trust me.",
    "How's your family doing, {other}?",
    "Everyone's good, thanks for asking.",
    "I rearranged the living room again, third time this year.",
    "Ha, you and your furniture.",
    "The neighbors are renovating and the drilling starts at seven.",
    "Oh no, that would drive me crazy.",
    "I've been listening to a great podcast about history.",
    "Send me the link!",
    "It's been a long day, I'm just happy to sit down.",
    "Well deserved, put your feet up.",
    "What are you up to tonight?",
    "Probably pizza and an early night.",
];

/// Reactions the other speaker gives right after a planted fact.
const REACTIONS: &[&str] = &[
    "No way, that's amazing!",
    "Wow, I didn't see that coming.",
    "That's great news, {other}!",
    "Oh, tell me more!",
    "Ha, of course you did.",
    "That sounds like a lot, how do you feel about it?",
    "I love that for you.",
    "Seriously? Good for you.",
];

const FIRST_NAMES: &[&str] = &[
    "Ana", "Ben", "Chloe", "Dev", "Elif", "Finn", "Grace", "Hugo", "Iris", "Jamal", "Kate", "Leo",
    "Maya", "Nico", "Omar", "Paula", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wes",
    "Yara",
];

/// A turn to place, with its owner (0 = speaker A, 1 = speaker B).
struct Planted {
    speaker: usize,
    text: String,
    /// The questions (indexes of the drafts) it is evidence for.
    questions: Vec<usize>,
}

/// A question under construction: its evidence turns are filled in when they get their ids.
struct Draft {
    question: String,
    answer: Option<String>,
    adversarial_answer: Option<String>,
    category: u32,
    evidence: Vec<String>,
}

fn fill(template: &str, slots: &[(String, String)]) -> String {
    let mut out = template.to_string();
    for (k, v) in slots {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// Draws a value for each slot group, avoiding values already used in the conversation.
fn draw_slots(
    groups: &[(&str, &[&str])],
    used: &mut HashSet<String>,
    rng: &mut StdRng,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (names, pool) in groups {
        let fresh: Vec<&&str> = pool.iter().filter(|v| !used.contains(**v)).collect();
        let value = match fresh.choose(rng) {
            Some(v) => **v,
            None => pool.choose(rng).copied().unwrap_or_default(),
        };
        used.insert(value.to_string());
        for (name, part) in names.split('|').zip(value.split('|')) {
            out.push((name.to_string(), part.to_string()));
        }
    }
    out
}

/// How a relative time in an event statement reads, and the date it means.
fn relative_time(session: &SessionDate, rng: &mut StdRng) -> (String, String) {
    const WEEKDAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    match rng.random_range(0..5) {
        0 => ("yesterday".into(), session.plus_days(-1).day_month_year()),
        1 => (
            "two days ago".into(),
            session.plus_days(-2).day_month_year(),
        ),
        2 => {
            let wd = rng.random_range(0..7u32);
            let back = (session.weekday() + 7 - wd - 1) % 7 + 1;
            (
                format!("last {}", WEEKDAYS[wd as usize]),
                session.plus_days(-(back as i64)).day_month_year(),
            )
        }
        3 => (
            "last week".into(),
            format!("the week before {}", session.day_month_year()),
        ),
        _ => (
            "last month".into(),
            session.plus_days(-(session.day as i64)).month_year(),
        ),
    }
}

/// The dataset for `config`: the same for the same config.
pub fn generate(config: &ConversationConfig) -> Dataset {
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0x6c6f_636f_6d6f); // "locomo"
    let conversations = (0..config.conversations)
        .map(|i| conversation(config, i, &mut rng))
        .collect();
    Dataset { conversations }
}

fn conversation(config: &ConversationConfig, index: usize, rng: &mut StdRng) -> Conversation {
    let mut names: Vec<&str> = FIRST_NAMES.choose_multiple(rng, 2).copied().collect();
    names.shuffle(rng);
    let speakers = [names[0].to_string(), names[1].to_string()];
    let sessions_n = config.sessions.max(2);

    // Session dates: a start in 2022-2024, then gaps of 1 to 20 days, daytime hours.
    let mut date = SessionDate {
        year: 2022 + rng.random_range(0..3),
        month: rng.random_range(1..=12),
        day: rng.random_range(1..=28),
        minute_of_day: 0,
    };
    let mut dates = Vec::with_capacity(sessions_n);
    for _ in 0..sessions_n {
        date.minute_of_day = rng.random_range(8 * 60..22 * 60);
        dates.push(date);
        date = date.plus_days(rng.random_range(1..=20));
    }

    let mut planted: Vec<Vec<Planted>> = (0..sessions_n).map(|_| Vec::new()).collect();
    let mut drafts: Vec<Draft> = Vec::new();
    // Distractors per session: (speaker, text).
    let mut distractors: Vec<Vec<(usize, String)>> = (0..sessions_n).map(|_| Vec::new()).collect();
    let mut used: HashSet<String> = HashSet::new();
    let slots_for = |speaker: usize| {
        vec![
            ("name".to_string(), speakers[speaker].clone()),
            ("other".to_string(), speakers[1 - speaker].clone()),
        ]
    };
    let mut add_distractors =
        |templates: &[&str], slots: &[(String, String)], rng: &mut StdRng, avoid: usize| {
            for _ in 0..config.distractors_per_question {
                let Some(t) = templates.choose(rng) else {
                    return;
                };
                let mut s = rng.random_range(0..sessions_n);
                if s == avoid {
                    s = (s + 1) % sessions_n;
                }
                distractors[s].push((rng.random_range(0..2), fill(t, slots)));
            }
        };

    // Single-hop facts: distinct kinds per speaker; remember them for adversarial questions.
    struct Owned {
        speaker: usize,
        kind: usize,
        slots: Vec<(String, String)>,
        session: usize,
        turn: usize,
    }
    let mut owned: Vec<Owned> = Vec::new();
    for speaker in 0..2 {
        let mut kinds: Vec<usize> = (0..SINGLE_HOP.len()).collect();
        kinds.shuffle(rng);
        for &k in kinds.iter().take(config.facts_per_speaker) {
            let kind = &SINGLE_HOP[k];
            let mut slots = slots_for(speaker);
            slots.extend(draw_slots(kind.slots, &mut used, rng));
            let session = rng.random_range(0..sessions_n);
            let q = drafts.len();
            drafts.push(Draft {
                question: fill(choose(kind.questions, rng), &slots),
                answer: Some(fill(kind.answer, &slots)),
                adversarial_answer: None,
                category: 4,
                evidence: Vec::new(),
            });
            planted[session].push(Planted {
                speaker,
                text: fill(choose(kind.statements, rng), &slots),
                questions: vec![q],
            });
            add_distractors(kind.distractors, &slots, rng, session);
            owned.push(Owned {
                speaker,
                kind: k,
                slots,
                session,
                turn: planted[session].len() - 1,
            });
        }
    }

    // Adversarial: a fact of one speaker asked about the other, who has no such fact (LoCoMo's
    // category 5: the evidence is the true owner's turn; there is no answer, only the
    // adversarial one).
    let mut adversarial = 0;
    for fact in &owned {
        if adversarial == config.adversarial {
            break;
        }
        let other = 1 - fact.speaker;
        if owned
            .iter()
            .any(|o| o.speaker == other && o.kind == fact.kind)
        {
            continue;
        }
        let mut swapped = fact.slots.clone();
        for (key, value) in swapped.iter_mut() {
            match key.as_str() {
                "name" => *value = speakers[other].clone(),
                "other" => *value = speakers[fact.speaker].clone(),
                _ => {}
            }
        }
        let kind = &SINGLE_HOP[fact.kind];
        planted[fact.session][fact.turn]
            .questions
            .push(drafts.len());
        drafts.push(Draft {
            question: fill(kind.questions[0], &swapped),
            answer: None,
            adversarial_answer: Some(fill(kind.answer, &fact.slots)),
            category: 5,
            evidence: Vec::new(),
        });
        adversarial += 1;
    }

    // Temporal facts: a relative time resolved against the session date.
    for speaker in 0..2 {
        let mut kinds: Vec<usize> = (0..EVENTS.len()).collect();
        kinds.shuffle(rng);
        for &k in kinds.iter().take(config.events_per_speaker) {
            let kind = &EVENTS[k];
            let session = rng.random_range(0..sessions_n);
            let (when, date) = relative_time(&dates[session], rng);
            let mut slots = slots_for(speaker);
            slots.extend(draw_slots(kind.slots, &mut used, rng));
            slots.push(("when".into(), when));
            slots.push(("date".into(), date));
            let q = drafts.len();
            drafts.push(Draft {
                question: fill(choose(kind.questions, rng), &slots),
                answer: Some(fill(kind.answer, &slots)),
                adversarial_answer: None,
                category: 2,
                evidence: Vec::new(),
            });
            planted[session].push(Planted {
                speaker,
                text: fill(choose(kind.statements, rng), &slots),
                questions: vec![q],
            });
            add_distractors(kind.distractors, &slots, rng, session);
        }
    }

    // Multi-hop: two turns of one speaker in two different sessions.
    for speaker in 0..2 {
        let mut kinds: Vec<usize> = (0..CHAINS.len()).collect();
        kinds.shuffle(rng);
        for &k in kinds.iter().take(config.chains_per_speaker) {
            let chain = &CHAINS[k];
            let mut slots = slots_for(speaker);
            slots.extend(draw_slots(chain.slots, &mut used, rng));
            let first = rng.random_range(0..sessions_n - 1);
            let second = rng.random_range(first + 1..sessions_n);
            let q = drafts.len();
            drafts.push(Draft {
                question: fill(chain.question, &slots),
                answer: Some(fill(chain.answer, &slots)),
                adversarial_answer: None,
                category: 1,
                evidence: Vec::new(),
            });
            planted[first].push(Planted {
                speaker,
                text: fill(chain.first, &slots),
                questions: vec![q],
            });
            planted[second].push(Planted {
                speaker,
                text: fill(chain.second, &slots),
                questions: vec![q],
            });
        }
    }

    // Open-domain: what a statement implies.
    for speaker in 0..2 {
        let mut kinds: Vec<usize> = (0..LEANINGS.len()).collect();
        kinds.shuffle(rng);
        for &k in kinds.iter().take(config.leanings_per_speaker) {
            let kind = &LEANINGS[k];
            let slots = slots_for(speaker);
            let session = rng.random_range(0..sessions_n);
            let q = drafts.len();
            drafts.push(Draft {
                question: fill(choose(kind.questions, rng), &slots),
                answer: Some(fill(kind.answer, &slots)),
                adversarial_answer: None,
                category: 3,
                evidence: Vec::new(),
            });
            planted[session].push(Planted {
                speaker,
                text: fill(choose(kind.statements, rng), &slots),
                questions: vec![q],
            });
            add_distractors(kind.distractors, &slots, rng, session);
        }
    }

    // Lay out each session: alternating speakers; planted turns at random places, each followed
    // by the other speaker's reaction; distractors and small talk in between.
    let mut sessions = Vec::with_capacity(sessions_n);
    for (s, date) in dates.iter().enumerate() {
        let target = rng
            .random_range(
                config.session_turns.0..=config.session_turns.1.max(config.session_turns.0),
            )
            .max(2 * planted[s].len() + distractors[s].len() + 2);
        let mut items: Vec<Item> = Vec::new();
        let mut p: Vec<&Planted> = planted[s].iter().collect();
        p.shuffle(rng);
        for fact in p {
            items.push(Item::Fact(fact));
        }
        for (speaker, text) in &distractors[s] {
            items.push(Item::Distractor(*speaker, text));
        }
        items.shuffle(rng);
        let opener = rng.random_range(0..2);
        let mut turns: Vec<(usize, String, Vec<usize>)> = Vec::new();
        let say = |speaker: usize, template: &str| {
            fill(
                template,
                &[
                    ("name".to_string(), speakers[speaker].clone()),
                    ("other".to_string(), speakers[1 - speaker].clone()),
                ],
            )
        };
        // Small talk: one line, or two run together as people do.
        let chat = |speaker: usize, rng: &mut StdRng| {
            let lines = &SMALL_TALK[2..];
            let mut text = say(speaker, choose(lines, rng));
            if rng.random_bool(0.4) {
                text.push(' ');
                text.push_str(&say(speaker, choose(lines, rng)));
            }
            text
        };
        turns.push((opener, say(opener, SMALL_TALK[0]), vec![]));
        turns.push((1 - opener, say(1 - opener, SMALL_TALK[1]), vec![]));
        let mut next_item = 0;
        while turns.len() < target || next_item < items.len() {
            let speaker = 1 - turns.last().map_or(opener, |t| t.0);
            let remaining_slots = target.saturating_sub(turns.len()).max(1);
            let due = items.len() - next_item;
            let place = due > 0 && rng.random_range(0..remaining_slots) < due * 2;
            if place {
                match items[next_item] {
                    Item::Fact(f) => {
                        // The fact's owner speaks; a small-talk line from the other first if needed.
                        if f.speaker != speaker {
                            turns.push((speaker, chat(speaker, rng), vec![]));
                        }
                        turns.push((f.speaker, f.text.clone(), f.questions.clone()));
                        let reaction = *REACTIONS.choose(rng).unwrap_or(&REACTIONS[0]);
                        turns.push((1 - f.speaker, say(1 - f.speaker, reaction), vec![]));
                    }
                    Item::Distractor(who, text) => {
                        if who != speaker {
                            turns.push((speaker, chat(speaker, rng), vec![]));
                        }
                        turns.push((who, text.to_string(), vec![]));
                    }
                }
                next_item += 1;
            } else {
                turns.push((speaker, chat(speaker, rng), vec![]));
            }
        }
        let number = s as u32 + 1;
        let mut out = Vec::with_capacity(turns.len());
        for (t, (speaker, text, questions)) in turns.into_iter().enumerate() {
            let dia_id = format!("D{number}:{}", t + 1);
            for q in questions {
                drafts[q].evidence.push(dia_id.clone());
            }
            out.push(Turn {
                speaker: speakers[speaker].clone(),
                dia_id,
                text,
                image_caption: None,
            });
        }
        sessions.push(Session {
            number,
            date_time: Some(date.locomo()),
            turns: out,
        });
    }

    let questions = drafts
        .into_iter()
        .map(|d| Question {
            question: d.question,
            answer: d.answer,
            adversarial_answer: d.adversarial_answer,
            evidence: d.evidence.into_iter().map(Value::String).collect(),
            category: d.category.to_string(),
        })
        .collect();
    Conversation {
        sample_id: format!("gen-{index}"),
        speaker_a: speakers[0].clone(),
        speaker_b: speakers[1].clone(),
        sessions,
        questions,
        skipped_turns: 0,
        skipped_questions: 0,
        duplicate_dia_ids: 0,
    }
}

enum Item<'a> {
    Fact(&'a Planted),
    Distractor(usize, &'a str),
}

fn choose<'a>(options: &[&'a str], rng: &mut StdRng) -> &'a str {
    options.choose(rng).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    #[test]
    fn the_same_seed_gives_the_same_dataset() {
        let c = ConversationConfig::small();
        assert_eq!(generate(&c), generate(&c));
        let other = ConversationConfig {
            seed: 7,
            ..ConversationConfig::small()
        };
        assert_ne!(generate(&c), generate(&other));
    }

    #[test]
    fn every_question_has_evidence_that_resolves() {
        let d = generate(&ConversationConfig::default());
        for conv in &d.conversations {
            let (resolved, report) = conv.resolve();
            assert!(!report.has_problems(), "{report}");
            assert_eq!(report.references, report.resolved);
            for (r, q) in resolved.iter().zip(&conv.questions) {
                assert!(!r.evidence.is_empty(), "{}", q.question);
                let want = if q.category == "1" { 2 } else { 1 };
                assert_eq!(r.evidence.len(), want, "{} {:?}", q.question, q.evidence);
            }
            // Multi-hop evidence lies in two different sessions.
            for q in conv.questions.iter().filter(|q| q.category == "1") {
                let sessions: HashSet<&str> = q
                    .evidence
                    .iter()
                    .filter_map(|e| e.as_str()?.split(':').next())
                    .collect();
                assert_eq!(sessions.len(), 2, "{:?}", q.evidence);
            }
        }
    }

    #[test]
    fn the_default_size_is_a_few_thousand_turns_and_hundreds_of_questions() {
        let d = generate(&ConversationConfig::default());
        assert!((3_000..6_000).contains(&d.turns()), "{} turns", d.turns());
        assert!(
            (250..600).contains(&d.questions()),
            "{} questions",
            d.questions()
        );
        let mut categories: BTreeMap<&str, usize> = BTreeMap::new();
        for q in d.conversations.iter().flat_map(|c| &c.questions) {
            *categories.entry(q.category.as_str()).or_default() += 1;
        }
        assert_eq!(
            categories.keys().copied().collect::<Vec<_>>(),
            ["1", "2", "3", "4", "5"]
        );
    }

    #[test]
    fn turns_alternate_and_sessions_are_dated_in_order() {
        let d = generate(&ConversationConfig::small());
        for conv in &d.conversations {
            let mut last = None;
            for s in &conv.sessions {
                let date = SessionDate::parse(s.date_time.as_deref().unwrap()).unwrap();
                assert!(last.is_none_or(|l| l < date));
                last = Some(date);
                for pair in s.turns.windows(2) {
                    assert_ne!(pair[0].speaker, pair[1].speaker, "{:?}", pair);
                }
            }
        }
    }

    #[test]
    fn adversarial_questions_have_no_answer_but_an_adversarial_one() {
        let d = generate(&ConversationConfig::default());
        let adv: Vec<&Question> = d
            .conversations
            .iter()
            .flat_map(|c| &c.questions)
            .filter(|q| q.category == "5")
            .collect();
        assert!(!adv.is_empty());
        assert!(adv
            .iter()
            .all(|q| q.answer.is_none() && q.adversarial_answer.is_some()));
    }

    #[test]
    fn questions_share_few_words_with_their_evidence() {
        // Paraphrase check: content words (4+ letters, not the speaker's name) shared between a
        // single-hop question and its evidence turn, on average well under two.
        let d = generate(&ConversationConfig::default());
        let (mut shared, mut n) = (0usize, 0usize);
        for conv in &d.conversations {
            let turns: Vec<&Turn> = conv.flat_turns().map(|(_, t)| t).collect();
            let (resolved, _) = conv.resolve();
            for (r, q) in resolved.iter().zip(&conv.questions) {
                if q.category != "4" {
                    continue;
                }
                let words = |s: &str| -> HashSet<String> {
                    s.split(|c: char| !c.is_alphanumeric())
                        .filter(|w| w.len() >= 4)
                        .map(str::to_lowercase)
                        .filter(|w| {
                            *w != conv.speaker_a.to_lowercase()
                                && *w != conv.speaker_b.to_lowercase()
                        })
                        .collect()
                };
                let qw = words(&q.question);
                shared += words(&turns[r.evidence[0]].text).intersection(&qw).count();
                n += 1;
            }
        }
        let mean = shared as f64 / n as f64;
        assert!(mean < 1.5, "mean shared content words {mean}");
    }

    #[test]
    fn the_generated_dataset_survives_the_json_round_trip() {
        let d = generate(&ConversationConfig::small());
        let again = Dataset::parse(&d.to_json().to_string(), Path::new("generated")).unwrap();
        assert_eq!(again, d);
    }
}
