//! The fixed word list used for the password part of session codes and for
//! verification words.
//!
//! The list holds 1024 words, so each word carries exactly 10 bits. Words are
//! short (3 to 8 characters), lower-case ASCII letters only, and chosen to be
//! easy to say over the phone and to spell: concrete, friendly nouns such as
//! animals, foods, objects and places.
//!
//! All words are distinct, and no two words differ only by one being the
//! plural of the other. A word *may* be a prefix of another word (for example
//! `cup` and `cupcake`), so anything that joins words must keep a separator
//! between them.
//!
//! [`WORDS`] is sorted in strictly ascending order, which lets [`index_of`]
//! use a binary search. The order and contents of the list are part of the
//! protocol: changing them changes the meaning of every code.

/// The 1024 words, sorted in strictly ascending (byte) order.
pub const WORDS: [&str; 1024] = [
    "abacus", "acorn", "acre", "acrobat", "actor", "advice", "air", "airport", "album", "alfalfa",
    "alley", "almond", "alpaca", "alpine", "alto", "amber", "anchor", "angle", "animal", "ankle",
    "answer", "anthem", "antler", "anvil", "apex", "apple", "apricot", "apron", "aqua", "arcade",
    "arch", "arena", "arm", "armchair", "aroma", "arrow", "art", "artist", "ash", "aspen", "atlas",
    "atom", "attic", "august", "aurora", "autumn", "avenue", "avocado", "award", "awning", "axis",
    "baby", "backpack", "bacon", "badge", "badger", "bagel", "bagpipe", "baker", "bakery",
    "balcony", "ball", "ballet", "balloon", "balsa", "bamboo", "banana", "band", "bandana",
    "banjo", "bank", "banner", "banquet", "barber", "barge", "bark", "barley", "barn", "barrel",
    "basalt", "basil", "basin", "basket", "bath", "battery", "bay", "beach", "beacon", "bead",
    "beak", "beam", "bean", "bear", "beaver", "bed", "bee", "beetle", "beetroot", "begonia",
    "bell", "belt", "bench", "beret", "berry", "bicycle", "bird", "biscuit", "bison", "blanket",
    "blazer", "blender", "blimp", "blossom", "blue", "bluebell", "bluff", "boat", "bobcat",
    "bobsled", "bongo", "bonnet", "bonsai", "book", "boot", "bottle", "boulder", "bouquet", "bowl",
    "box", "bracelet", "bramble", "branch", "brass", "bread", "breadbox", "breeze", "brick",
    "bridge", "bronze", "brook", "broom", "brother", "brunch", "brush", "bubble", "bucket",
    "buckle", "buffalo", "buggy", "bugle", "bulb", "bumper", "bungalow", "bunk", "bunny", "burrow",
    "bus", "bush", "butter", "button", "cabbage", "cabin", "cable", "cactus", "cafe", "cake",
    "calendar", "calf", "camel", "camera", "camp", "campus", "canal", "canary", "candle", "candy",
    "canoe", "canopy", "canvas", "canyon", "cap", "cape", "captain", "car", "caramel", "caravan",
    "card", "cargo", "carnival", "carousel", "carpet", "carrot", "cart", "carton", "cashew",
    "cassette", "castle", "cat", "catfish", "cave", "cavern", "cedar", "celery", "cellar", "cello",
    "cement", "chair", "chalk", "channel", "chapel", "chapter", "charcoal", "chariot", "cheese",
    "cheetah", "chef", "cherry", "chess", "chest", "chestnut", "chicken", "chime", "chimney",
    "chin", "chip", "chipmunk", "choir", "chorus", "chowder", "cider", "cinnamon", "circle",
    "circus", "citrus", "city", "clam", "clarinet", "clay", "cliff", "climb", "clock", "cloud",
    "clover", "clown", "coach", "coast", "coat", "cobalt", "cocoa", "coconut", "cocoon", "coffee",
    "coin", "collar", "comb", "comet", "compass", "condor", "cone", "confetti", "cookbook",
    "cookie", "copper", "coral", "cork", "corn", "cosmos", "cottage", "cotton", "couch", "country",
    "cousin", "cow", "coyote", "crab", "cracker", "cradle", "crane", "crater", "crayon", "cream",
    "creek", "crescent", "cricket", "crocus", "crown", "crust", "crystal", "cub", "cube", "cuckoo",
    "cup", "cupboard", "cupcake", "curry", "curtain", "cushion", "cycle", "cypress", "daffodil",
    "daisy", "dancer", "dawn", "deck", "deer", "delta", "denim", "desk", "dessert", "dew",
    "diamond", "diary", "dingo", "dinner", "dish", "diver", "dock", "doctor", "dolphin", "dome",
    "domino", "donkey", "doodle", "door", "dormouse", "dough", "dove", "dragon", "drawer", "dream",
    "dress", "drizzle", "drum", "duck", "duet", "dugout", "dumpling", "dune", "dust", "eagle",
    "ear", "earmuff", "earth", "easel", "echo", "eclipse", "edge", "eel", "egg", "eggnog",
    "eggplant", "elbow", "elephant", "elf", "elk", "elm", "ember", "emerald", "emu", "engine",
    "envelope", "eraser", "espresso", "evening", "fable", "fabric", "fairy", "falcon", "family",
    "fan", "farm", "fawn", "feather", "fence", "fennel", "fern", "ferret", "ferry", "festival",
    "fiddle", "field", "fiesta", "fig", "finch", "finger", "fir", "fire", "fish", "flag", "flame",
    "flamingo", "flannel", "flapjack", "flask", "fleece", "fleet", "flint", "flock", "floor",
    "florist", "flower", "flute", "foal", "foam", "fog", "folder", "folk", "forest", "forge",
    "fork", "fossil", "fountain", "fox", "frame", "freckle", "friend", "frog", "frost", "fruit",
    "fudge", "funnel", "furnace", "gadget", "galaxy", "garage", "garden", "garlic", "gate",
    "gazebo", "gazelle", "gecko", "gem", "giant", "ginger", "giraffe", "glacier", "glass",
    "glider", "globe", "glove", "goat", "gold", "gondola", "gong", "goose", "gorilla", "grain",
    "granite", "grape", "grass", "gravel", "gravy", "green", "grizzly", "grove", "guava", "guitar",
    "gull", "gumbo", "gumdrop", "habit", "hammer", "hammock", "hamster", "hand", "harp", "harvest",
    "hat", "hawk", "hay", "hazel", "hazelnut", "heart", "hearth", "heather", "hedge", "hedgehog",
    "helium", "helmet", "hen", "herb", "heron", "hiker", "hill", "hilltop", "hippo", "hobby",
    "holly", "honey", "honeybee", "hood", "hoof", "hoop", "horizon", "horn", "horse", "hotel",
    "house", "hummus", "husky", "ice", "icicle", "igloo", "iguana", "index", "ink", "insect",
    "iris", "iron", "island", "ivory", "ivy", "jacket", "jade", "jaguar", "jam", "jar", "jasmine",
    "jeans", "jelly", "jersey", "jet", "jewel", "jigsaw", "jingle", "jogger", "jolly", "journey",
    "juice", "jukebox", "jumper", "jungle", "juniper", "kale", "kangaroo", "kayak", "kazoo",
    "kelp", "kennel", "ketchup", "kettle", "key", "keyboard", "kingdom", "kiosk", "kitchen",
    "kite", "kitten", "kiwi", "knee", "knot", "koala", "label", "lace", "ladder", "lagoon", "lake",
    "lamb", "lamp", "lantern", "laptop", "lark", "lasso", "latte", "lava", "lavender", "lawn",
    "leaf", "lemon", "lemonade", "lemur", "lens", "lentil", "leopard", "letter", "lettuce",
    "library", "lilac", "lily", "lime", "linen", "lion", "lizard", "llama", "lobby", "lobster",
    "locket", "lodge", "log", "lollipop", "loom", "lotus", "lunch", "macaroni", "magnet", "magpie",
    "mammoth", "mandolin", "mango", "map", "maple", "marble", "marigold", "marina", "market",
    "marsh", "mascot", "meadow", "meerkat", "melody", "melon", "menu", "mermaid", "metal",
    "meteor", "midnight", "mill", "minnow", "mint", "mirror", "mitten", "moat", "mocha", "mole",
    "monkey", "monsoon", "moon", "moose", "moped", "mosaic", "moss", "moth", "motor", "mountain",
    "mouse", "muffin", "mug", "mule", "mural", "museum", "music", "mustard", "nacho", "nail",
    "napkin", "necklace", "nectar", "needle", "nest", "net", "newt", "nickel", "night", "nomad",
    "noodle", "north", "nose", "notebook", "nugget", "nut", "nutmeg", "oak", "oar", "oasis",
    "oatmeal", "ocean", "octopus", "olive", "onion", "opal", "opera", "orange", "orbit", "orca",
    "orchard", "orchid", "oregano", "origami", "ostrich", "otter", "oven", "owl", "oyster",
    "paddle", "page", "pagoda", "paint", "palace", "palm", "pan", "pancake", "panda", "panel",
    "panther", "pantry", "papaya", "paper", "parade", "parcel", "parrot", "parsley", "parsnip",
    "passport", "pasta", "pastel", "pastry", "path", "patio", "peach", "peacock", "peanut", "pear",
    "pebble", "pecan", "pelican", "pen", "pencil", "penguin", "pepper", "petal", "petunia",
    "piano", "pickle", "pickup", "picnic", "pie", "pier", "pigeon", "piglet", "pillow", "pilot",
    "pine", "pinecone", "pinwheel", "pitcher", "pizza", "planet", "plank", "plate", "plaza",
    "plum", "pocket", "poem", "polar", "poncho", "pond", "pony", "poodle", "popcorn", "poppy",
    "porch", "porridge", "possum", "postcard", "potato", "potter", "pottery", "pouch", "prairie",
    "pretzel", "prism", "pudding", "puffin", "pumpkin", "pupil", "puppy", "puzzle", "pyramid",
    "quail", "quartz", "queen", "quill", "quilt", "rabbit", "raccoon", "radar", "radio", "radish",
    "raft", "rain", "rainbow", "raisin", "ranch", "rapids", "raven", "recipe", "reed", "reef",
    "reindeer", "rhino", "ribbon", "rice", "riddle", "ridge", "river", "road", "robin", "robot",
    "rocket", "rodeo", "roller", "roof", "rooster", "rose", "rosemary", "rowboat", "ruby",
    "rudder", "rug", "runway", "saddle", "safari", "sage", "sail", "sailor", "salad", "salmon",
    "salsa", "salt", "sand", "sandal", "sapphire", "sardine", "satin", "saucer", "sausage",
    "scarf", "school", "scooter", "scroll", "seagull", "seal", "seashell", "season", "seed",
    "sesame", "shadow", "shark", "sheep", "shelf", "shell", "ship", "shirt", "shoe", "shore",
    "shovel", "shrimp", "shutter", "siesta", "signal", "silo", "silver", "sink", "sketch", "ski",
    "skirt", "sky", "skylark", "slate", "sled", "sleigh", "slipper", "sloth", "smoothie", "snail",
    "snow", "snowman", "soap", "sock", "sofa", "sonnet", "sorbet", "soup", "spade", "sparrow",
    "spider", "spinach", "sponge", "spoon", "spring", "sprout", "spruce", "squash", "squid",
    "squirrel", "stable", "stallion", "stamp", "star", "starfish", "statue", "steam", "steeple",
    "stitch", "stone", "stool", "stork", "storm", "stove", "straw", "stream", "street", "studio",
    "sugar", "summer", "summit", "sun", "sundial", "sunrise", "sunset", "swallow", "swan",
    "sweater", "syrup", "table", "tablet", "taco", "tadpole", "tail", "tango", "teacup", "teal",
    "teapot", "tent", "thimble", "thistle", "thunder", "tiara", "ticket", "tide", "tiger", "tile",
    "timber", "toad", "toast", "toffee", "token", "tomato", "tooth", "topaz", "torch", "tortoise",
    "toucan", "towel", "tower", "toy", "tractor", "train", "tree", "tripod", "trolley", "trophy",
    "trout", "truck", "trumpet", "tuba", "tugboat", "tulip", "tuna", "tundra", "tunnel", "turkey",
    "turnip", "turtle", "tuxedo", "twig", "ukulele", "umbrella", "unicorn", "valley", "vanilla",
    "vase", "velvet", "veranda", "vest", "village", "vine", "vinegar", "viola", "violet", "violin",
    "visor", "volcano", "voyage", "waffle", "wagon", "wallaby", "walnut", "walrus", "wand",
    "wardrobe", "wave", "weasel", "whale", "wheat", "wheel", "whistle", "widget", "willow",
    "windmill", "window", "wing", "winter", "wizard", "wolf", "wombat", "wool", "wreath", "wren",
    "yak", "yard", "yarn", "year", "yellow", "yodel", "yoga", "yolk", "yoyo", "zebra", "zeppelin",
    "zinc", "zinnia", "zipper", "zone",
];

/// Returns the index of `word` in [`WORDS`], ignoring ASCII case, or `None`
/// if it is not on the list.
pub fn index_of(word: &str) -> Option<usize> {
    let lower = word.to_ascii_lowercase();
    WORDS.binary_search(&lower.as_str()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn has_1024_distinct_words() {
        assert_eq!(WORDS.len(), 1024);
        let set: HashSet<&str> = WORDS.iter().copied().collect();
        assert_eq!(set.len(), 1024);
    }

    #[test]
    fn sorted_strictly_ascending() {
        for pair in WORDS.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{:?} is not before {:?}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn words_are_short_lowercase_ascii() {
        for word in WORDS {
            assert!((3..=8).contains(&word.len()), "bad length: {word:?}");
            assert!(
                word.bytes().all(|b| b.is_ascii_lowercase()),
                "bad characters: {word:?}"
            );
        }
    }

    #[test]
    fn no_plural_pairs() {
        let set: HashSet<&str> = WORDS.iter().copied().collect();
        for word in WORDS {
            for suffix in ["s", "es"] {
                let plural = format!("{word}{suffix}");
                assert!(!set.contains(plural.as_str()), "{word:?} and {plural:?}");
            }
        }
    }

    #[test]
    fn index_of_finds_every_word() {
        for (i, word) in WORDS.iter().enumerate() {
            assert_eq!(index_of(word), Some(i));
            assert_eq!(index_of(&word.to_ascii_uppercase()), Some(i));
        }
    }

    #[test]
    fn index_of_rejects_unknown() {
        assert_eq!(index_of("zzzzzz"), None);
        assert_eq!(index_of(""), None);
    }
}
