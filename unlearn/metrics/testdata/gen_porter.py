# Generates testdata/porter_nltk.json: stems of nltk.stem.porter.PorterStemmer() (mode NLTK_EXTENSIONS,
# the stemmer rouge_score uses) for the Go test of PorterStem.
# Vocabulary: the words of the license texts in /usr/share/common-licenses
# (Debian) plus words chosen to reach every rule and NLTK departure.
import glob, json, re, nltk
from nltk.stem.porter import PorterStemmer

extra = """
caresses ponies ties caress cats feed agreed plastered bled motoring sing
conflated troubled sized hopping tanned falling hissing fizzed failing filing
happy sky relational conditional rational valenci hesitanci digitizer
conformabli radicalli differentli vileli analogousli vietnamization predication
operator feudalism decisiveness hopefulness callousness formaliti sensitiviti
sensibiliti triplicate formative formalize electriciti electrical hopeful
goodness revival allowance inference airliner gyroscopic adjustable defensible
irritant replacement adjustment dependent adoption homologou communism activate
angulariti homologous effective bowdlerize probate rate cease controll roll
generalization generalizations dies died spied flies cried lying dying tying
skies news innings inning outings cannings howe proceed exceed succeed enjoy
enjoyment spy fly try tried geology archaeology theology fruitfully
beautifully hopefully logically meeting meetings mating matting milling messing
disabled agreement abate abated oed aed ied eed bed red need seed breed
sees saw seen is as us was this his has does goes going gone went knows
knowing author authors authored writing written novel novels biography
biographical fictional fiction character characters born birthplace mother
father parents award awarded awards genre genres publication published
international nationality national nationalities organization organizational
generously generous university universities studying studied studies study
yesterday yellow yyyy toy syzygy troubles private oaten orrery tree trees ivy
y by tr ee a ab abc abcd xyz electricity electrically relativity relativistic
running runner runs ran swimming swimmer apples apple applied apply applying
happiness happier happiest quickly quick quicker quickest lovely loving loved
lover loves hoping hoped hopes hoping sizing size sized
""".split()
words = set(extra)
for path in glob.glob("/usr/share/common-licenses/*"):
    try:
        text = open(path, encoding="utf-8", errors="ignore").read()
    except IsADirectoryError:
        continue
    words.update(w.lower() for w in re.findall(r"[A-Za-z]+", text))
st = PorterStemmer()
table = {w: st.stem(w) for w in sorted(words)}
json.dump({"nltk": nltk.__version__, "stems": table}, open("porter_nltk.json", "w"), indent=0, sort_keys=True)
print(len(table))
