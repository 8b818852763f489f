#define BOOST_TEST_MODULE pii_detector_test
#include "agent/transforms/pii_detector.h"

#include <boost/test/unit_test.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace tributary {

std::ostream& operator<<(std::ostream& os, PiiPattern pattern) {
  return os << PiiPatternName(pattern);
}

namespace {

constexpr uint32_t Only(PiiPattern p) { return 1u << static_cast<int>(p); }

const PiiDetector& Detector() {
  static const PiiDetector kDetector;
  return kDetector;
}

std::vector<PiiMatch> Find(std::string_view text, uint32_t patterns = 0x1f) {
  std::vector<PiiMatch> matches;
  Detector().Find(text, &matches, patterns);
  return matches;
}

// The matched substrings, as "pattern:text".
std::vector<std::string> Found(std::string_view text, uint32_t patterns = 0x1f) {
  std::vector<std::string> found;
  for (const PiiMatch& m : Find(text, patterns)) {
    found.push_back(std::string(PiiPatternName(m.pattern)) + ":" +
                    std::string(text.substr(m.begin, m.end - m.begin)));
  }
  return found;
}

using Strings = std::vector<std::string>;

BOOST_AUTO_TEST_CASE(emails_are_found_with_their_positions) {
  const std::string_view text = "contact ann.lee+cdc@mail.example.co.uk today";
  const auto matches = Find(text);
  BOOST_REQUIRE_EQUAL(matches.size(), 1u);
  BOOST_TEST(matches[0].begin == 8u);
  BOOST_TEST(matches[0].end == 38u);
  BOOST_TEST(matches[0].pattern == PiiPattern::kEmail);
  BOOST_TEST(Found("a@b.cd and x@y.org") == (Strings{"email:a@b.cd", "email:x@y.org"}),
             boost::test_tools::per_element());
  BOOST_TEST(Found("user@localhost is not an address, nor is @twitter").empty());
}

BOOST_AUTO_TEST_CASE(ssns_are_dashed_and_in_issued_ranges) {
  BOOST_TEST(Found("ssn 078-05-1120.") == (Strings{"ssn:078-05-1120"}),
             boost::test_tools::per_element());
  BOOST_TEST(Found("itin 912-70-1234") == (Strings{"ssn:912-70-1234"}),
             boost::test_tools::per_element());
  BOOST_TEST(Found("000-12-3456 666-12-3456 123-00-4567 123-45-0000").empty());
  BOOST_TEST(Found("ref 123-45-67890 and 0123-45-6789").empty());  // not delimited as an SSN
  BOOST_TEST(Found("078051120 bare digits").empty());
}

BOOST_AUTO_TEST_CASE(phone_numbers_need_a_plus_or_north_american_grouping) {
  BOOST_TEST(Found("call +1 415 555 0132 now") == (Strings{"phone:+1 415 555 0132"}),
             boost::test_tools::per_element());
  BOOST_TEST(Found("+44 20 7946 0958") == (Strings{"phone:+44 20 7946 0958"}),
             boost::test_tools::per_element());
  BOOST_TEST(Found("+4915112345678") == (Strings{"phone:+4915112345678"}),
             boost::test_tools::per_element());
  BOOST_TEST(Found("office (415) 555-0132") == (Strings{"phone:(415) 555-0132"}),
             boost::test_tools::per_element());
  BOOST_TEST(Found("cell 415.555.0132") == (Strings{"phone:415.555.0132"}),
             boost::test_tools::per_element());
  // Conservative: plain numbers, dates, times, versions and amounts are not phones.
  BOOST_TEST(Found("order 4155550132 shipped").empty());
  BOOST_TEST(Found("2024-01-31T13:45:00.123400Z").empty());
  BOOST_TEST(Found("version 10.12.3, total 1,234,567.89, ip 192.168.100.200").empty());
  BOOST_TEST(Found("123-456-7890").empty());  // area codes never start with 0 or 1
  BOOST_TEST(Found("+12 345").empty());       // too few digits
}

BOOST_AUTO_TEST_CASE(card_numbers_must_pass_luhn) {
  BOOST_TEST(Found("card 4111 1111 1111 1111, thanks") == (Strings{"card:4111 1111 1111 1111"}),
             boost::test_tools::per_element());
  BOOST_TEST(Found("5500-0000-0000-0004") == (Strings{"card:5500-0000-0000-0004"}),
             boost::test_tools::per_element());
  BOOST_TEST(Found("pan=4111111111111111;") == (Strings{"card:4111111111111111"}),
             boost::test_tools::per_element());
  BOOST_TEST(Found("amex 3782 822463 10005") == (Strings{"card:3782 822463 10005"}),
             boost::test_tools::per_element());
  // One digit off: Luhn fails, nothing flagged.
  BOOST_TEST(Found("card 4111 1111 1111 1112").empty());
  BOOST_TEST(Found("4111111111111112").empty());
  BOOST_TEST(Found("0000 0000 0000 0000").empty());
  // Too long to be a card, even though a 16-digit slice would pass.
  BOOST_TEST(Found("41111111111111110000000").empty());
}

BOOST_AUTO_TEST_CASE(ibans_must_pass_mod_97) {
  BOOST_TEST(Found("iban GB82WEST12345698765432.") == (Strings{"iban:GB82WEST12345698765432"}),
             boost::test_tools::per_element());
  BOOST_TEST(Found("DE89 3704 0044 0532 0130 00") == (Strings{"iban:DE89 3704 0044 0532 0130 00"}),
             boost::test_tools::per_element());
  // A printed IBAN running into a following word keeps only the IBAN.
  BOOST_TEST(Found("BE68 5390 0754 7034 ABCD") == (Strings{"iban:BE68 5390 0754 7034"}),
             boost::test_tools::per_element());
  BOOST_TEST(Found("iban GB83WEST12345698765432").empty());  // check digits wrong
  BOOST_TEST(IbanValid("GB82WEST12345698765432"));
  BOOST_TEST(IbanValid("NO9386011117947"));  // the shortest format, 15 characters
  BOOST_TEST(!IbanValid("GB82WEST12345698765433"));
  BOOST_TEST(!IbanValid("GB82west12345698765432"));
  BOOST_TEST(!IbanValid("GB82"));
}

BOOST_AUTO_TEST_CASE(luhn_check) {
  BOOST_TEST(LuhnValid("79927398713"));
  BOOST_TEST(!LuhnValid("79927398710"));
  BOOST_TEST(LuhnValid("4111-1111-1111-1111"));
  BOOST_TEST(!LuhnValid("4111-1111-1111-1121"));
  BOOST_TEST(!LuhnValid(""));
}

BOOST_AUTO_TEST_CASE(several_patterns_in_one_text_come_back_sorted) {
  const std::string text =
      "Ann (ann@example.com, ssn 078-05-1120) paid with 4111 1111 1111 1111 from "
      "GB82WEST12345698765432; call +1 415 555 0132.";
  BOOST_TEST(Found(text) ==
                 (Strings{"email:ann@example.com", "ssn:078-05-1120", "card:4111 1111 1111 1111",
                          "iban:GB82WEST12345698765432", "phone:+1 415 555 0132"}),
             boost::test_tools::per_element());
  // Only the requested patterns.
  BOOST_TEST(Found(text, Only(PiiPattern::kCard) | Only(PiiPattern::kSsn)) ==
                 (Strings{"ssn:078-05-1120", "card:4111 1111 1111 1111"}),
             boost::test_tools::per_element());
  BOOST_TEST(Found(text, 0).empty());
}

BOOST_AUTO_TEST_CASE(overlapping_matches_merge) {
  // The local part is a card number: one span covering both.
  const std::string_view text = "4111111111111111@example.com";
  const auto matches = Find(text);
  BOOST_REQUIRE_EQUAL(matches.size(), 1u);
  BOOST_TEST(matches[0].begin == 0u);
  BOOST_TEST(matches[0].end == text.size());
}

BOOST_AUTO_TEST_CASE(short_and_digitless_texts_are_skipped) {
  BOOST_TEST(Find("a@b.c").empty());  // shorter than kMinLength
  BOOST_TEST(Find("just some words without anything").empty());
  BOOST_TEST(Find("").empty());
}

BOOST_AUTO_TEST_CASE(prefilters_never_hide_a_match) {
  // Every sample at every alignment (the digit count runs 8 bytes at a time), after prefixes
  // ending in a non-word byte, with digits and capitals around it.
  const Strings samples = {"email:ann@example.com", "ssn:078-05-1120",
                           "phone:+1 415 555 0132", "phone:(415) 555-0132",
                           "card:4111111111111111", "card:3782 822463 10005",
                           "iban:NO9386011117947",  "iban:GB82 WEST 1234 5698 7654 32"};
  const Strings prefixes = {"", " ", "é ", "tel:", "x=", "ab12 (", "ÀB ", "1-2 "};
  for (const std::string& sample : samples) {
    const size_t colon = sample.find(':');
    const std::string value = sample.substr(colon + 1);
    for (const std::string& prefix : prefixes) {
      for (size_t pad = 0; pad < 9; ++pad) {
        std::string text(pad, 'z');
        text += " ";
        text += prefix;
        text += value;
        text += ", Z9 ok";
        BOOST_TEST(Found(text) == Strings{sample}, boost::test_tools::per_element());
      }
    }
  }
  // Digit-heavy text that is no PII: hex digests, digits glued to letters.
  BOOST_TEST(Found("5d41402abc4b2a76b9719d911017c59200000001").empty());
  BOOST_TEST(Found("x4111111111111111 id_0781051120").empty());
}

BOOST_AUTO_TEST_CASE(find_reuses_the_vector) {
  std::vector<PiiMatch> matches;
  matches.reserve(8);
  const auto* data = matches.data();
  Detector().Find("a@example.com", &matches);
  BOOST_TEST(matches.size() == 1u);
  Detector().Find("nothing here at all", &matches);
  BOOST_TEST(matches.empty());  // cleared, not appended to
  BOOST_TEST(matches.data() == data);
}

BOOST_AUTO_TEST_CASE(suspicious_column_names) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"email", "email"},
      {"customer_email", "email"},
      {"e_mail", "email"},
      {"EmailAddress", "email"},
      {"mail", "email"},
      {"ssn", "ssn"},
      {"SSN", "ssn"},
      {"social_security_number", "ssn"},
      {"phone", "phone"},
      {"phoneNumber", "phone"},
      {"mobile_no", "phone"},
      {"tel", "phone"},
      {"card_number", "card"},
      {"creditCard", "card"},
      {"cc", "card"},
      {"iban", "iban"},
      {"dob", "dob"},
      {"date_of_birth", "dob"},
      {"birthDate", "dob"},
      {"passport_no", "passport"},
      {"tax_id", "tax_id"},
      {"national_id", "national_id"},
      {"drivers_license", "driver_license"},
  };
  for (const auto& [name, label] : cases) {
    const char* found = SuspiciousColumnName(name);
    BOOST_TEST_CONTEXT(name) {
      BOOST_REQUIRE(found != nullptr);
      BOOST_TEST(std::string_view(found) == label);
    }
  }
  for (std::string_view name : {"id", "notes", "discard", "cardinality", "lessnumbers", "amount",
                                "created_at", "telemetry", "hotel", "accent"}) {
    BOOST_TEST(SuspiciousColumnName(name) == nullptr, name);
  }
}

}  // namespace
}  // namespace tributary
